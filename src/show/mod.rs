//! What a genotype looks like: a text summary per cell and SVG drawings of the cells.

mod layout;
mod svg;
mod text;

pub use layout::{NodePosition, cell_layout, edge_route};
pub use svg::{cell_svg, cells_svg, op_colour};
pub use text::summary;
