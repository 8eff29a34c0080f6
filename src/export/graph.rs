//! The trained network as an ONNX graph in inference form: dead and closed ops left out, gates folded away,
//! batch norms after convolutions folded into them, and only the final classifier's logits as output.

use super::proto::{
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
    attribute_type, data_type,
};
use crate::genotype::{BATCH_NORM_EPS, Cell, ConvBlock, ConvShape, Genotype, Op};
use crate::nn::tensor_names as names;
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// Name of the graph's input: normalised images, (batch, channels, height, width).
pub const INPUT: &str = "input";
/// Name of the graph's output: the final classifier's logits, (batch, classes).
pub const OUTPUT: &str = "logits";

/// A tensor read out of the weights: shape and f32 elements.
struct Array {
    dims: Vec<i64>,
    values: Vec<f32>,
}

/// The network's tensors by name, as `Supernet::named_tensors` names them.
pub struct Weights {
    tensors: HashMap<String, Tensor>,
}

/// Why a trained network cannot be written as ONNX.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The weights lack a tensor the genotype's graph needs.
    #[error("the weights have no tensor {0}")]
    MissingTensor(String),
    /// A tensor could not be read as f32 values.
    #[error("tensor {name}")]
    UnreadableTensor {
        name: String,
        #[source]
        source: tch::TchError,
    },
    /// With its closed gates left out, no live path reaches a cell's output.
    #[error("cell {0}: no path reaches the output node")]
    NoPathToOutput(usize),
}

impl Weights {
    /// Wraps named tensors.
    pub fn new(tensors: Vec<(String, Tensor)>) -> Self {
        Weights {
            tensors: tensors.into_iter().collect(),
        }
    }

    fn get(&self, name: &str) -> Result<Array, ExportError> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| ExportError::MissingTensor(name.to_string()))?;
        let flat = tensor.to_kind(Kind::Float).to_device(tch::Device::Cpu).flatten(0, -1);
        let values = Vec::<f32>::try_from(&flat).map_err(|source| ExportError::UnreadableTensor {
            name: name.to_string(),
            source,
        })?;
        Ok(Array {
            dims: tensor.size(),
            values,
        })
    }

    /// Whether the gate of an op is open (its weight is positive): a closed gate multiplies the op by exactly 0.
    fn gate_open(&self, prefix: &str) -> Result<bool, ExportError> {
        Ok(self
            .get(&names::join(prefix, names::GATE))?
            .values
            .first()
            .is_some_and(|&w| w > 0.0))
    }
}

fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: values.to_vec(),
        r#type: Some(attribute_type::INTS),
        ..Default::default()
    }
}

fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(value),
        r#type: Some(attribute_type::INT),
        ..Default::default()
    }
}

fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        f: Some(value),
        r#type: Some(attribute_type::FLOAT),
        ..Default::default()
    }
}

/// A tensor-typed value with some dimensions named (the batch) and others fixed.
pub fn value_info(name: &str, dims: &[Result<i64, &str>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Ok(size) => super::proto::Dimension {
                dim_value: Some(*size),
                dim_param: None,
            },
            Err(param) => super::proto::Dimension {
                dim_value: None,
                dim_param: Some(param.to_string()),
            },
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: Some(data_type::FLOAT),
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

/// Builds the node list and the initializers, naming every value uniquely.
struct Builder<'a> {
    weights: &'a Weights,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    values: usize,
}

impl Builder<'_> {
    fn constant(&mut self, name: String, dims: Vec<i64>, values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims,
            data_type: Some(data_type::FLOAT),
            name: Some(name.clone()),
            raw_data: Some(raw),
        });
        name
    }

    fn constant_i64(&mut self, name: &str, values: &[i64]) -> String {
        if !self.initializers.iter().any(|t| t.name.as_deref() == Some(name)) {
            let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.initializers.push(TensorProto {
                dims: vec![values.len() as i64],
                data_type: Some(data_type::INT64),
                name: Some(name.into()),
                raw_data: Some(raw),
            });
        }
        name.to_string()
    }

    fn node(&mut self, op_type: &str, inputs: &[&str], attribute: Vec<AttributeProto>, hint: &str) -> String {
        self.values += 1;
        let output = format!("{hint}/{}{}", op_type.to_lowercase(), self.values);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name: Some(output.clone()),
            op_type: Some(op_type.into()),
            attribute,
        });
        output
    }

    /// A convolution whose following batch norm `bn` (a name prefix) is folded in: W·γ/σ and β − μ·γ/σ.
    fn conv_bn(
        &mut self,
        x: &str,
        weight: &str,
        bn: Option<&str>,
        shape: ConvShape,
        hint: &str,
    ) -> Result<String, ExportError> {
        let w = self.weights.get(weight)?;
        let out_channels = w.dims[0] as usize;
        let per_channel = w.values.len() / out_channels.max(1);
        let (values, bias) = match bn {
            Some(bn) => {
                let part = |name: &str| self.weights.get(&names::join(bn, name)).map(|array| array.values);
                let (gamma, beta) = (part(names::WEIGHT)?, part(names::BIAS)?);
                let (mean, var) = (part(names::RUNNING_MEAN)?, part(names::RUNNING_VAR)?);
                let scale: Vec<f64> = (0..out_channels)
                    .map(|c| gamma[c] as f64 / (var[c] as f64 + BATCH_NORM_EPS).sqrt())
                    .collect();
                let folded: Vec<f32> = w
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (v as f64 * scale[i / per_channel]) as f32)
                    .collect();
                let bias: Vec<f32> = (0..out_channels)
                    .map(|c| (beta[c] as f64 - mean[c] as f64 * scale[c]) as f32)
                    .collect();
                (folded, Some(bias))
            }
            None => (w.values, None),
        };
        let w_name = self.constant(format!("{weight}:folded"), w.dims.clone(), &values);
        let mut inputs = vec![x.to_string(), w_name];
        if let Some(bias) = bias {
            inputs.push(self.constant(format!("{weight}:bias"), vec![out_channels as i64], &bias));
        }
        let pad = shape.padding();
        let attributes = vec![
            attr_ints("kernel_shape", &[shape.kernel, shape.kernel]),
            attr_ints("strides", &[shape.stride, shape.stride]),
            attr_ints("pads", &[pad, pad, pad, pad]),
            attr_ints("dilations", &[shape.dilation, shape.dilation]),
            attr_int("group", shape.groups),
        ];
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.node("Conv", &inputs, attributes, hint))
    }

    /// A batch norm on its own (after a sum of edges), in inference form.
    fn batch_norm(&mut self, x: &str, bn: &str, hint: &str) -> Result<String, ExportError> {
        let mut inputs = vec![x.to_string()];
        for part in [names::WEIGHT, names::BIAS, names::RUNNING_MEAN, names::RUNNING_VAR] {
            let name = names::join(bn, part);
            let array = self.weights.get(&name)?;
            inputs.push(self.constant(name, array.dims, &array.values));
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.node(
            "BatchNormalization",
            &inputs,
            vec![attr_float("epsilon", BATCH_NORM_EPS as f32)],
            hint,
        ))
    }

    /// Every second row and column (x[:, :, ::2, ::2]).
    fn subsample(&mut self, x: &str, hint: &str) -> String {
        let starts = self.constant_i64("const:starts", &[0, 0]);
        let ends = self.constant_i64("const:ends", &[i64::MAX, i64::MAX]);
        let axes = self.constant_i64("const:axes", &[2, 3]);
        let steps = self.constant_i64("const:steps", &[2, 2]);
        self.node("Slice", &[x, &starts, &ends, &axes, &steps], Vec::new(), hint)
    }

    fn sum(&mut self, terms: &[String], hint: &str) -> String {
        match terms {
            [single] => single.clone(),
            _ => {
                let inputs: Vec<&str> = terms.iter().map(String::as_str).collect();
                self.node("Sum", &inputs, Vec::new(), hint)
            }
        }
    }

    /// Depthwise conv → pointwise conv with its batch norm folded in; `block` names the three under `owner`.
    fn depthwise_pointwise(
        &mut self,
        x: &str,
        owner: &str,
        (depthwise, pointwise): ConvBlock,
    ) -> Result<String, ExportError> {
        let tensor = |part: &str, name: &str| names::join(&names::join(owner, part), name);
        let y = self.conv_bn(x, &tensor(names::DEPTHWISE, names::WEIGHT), None, depthwise, owner)?;
        let bn = names::join(owner, names::BN);
        self.conv_bn(
            &y,
            &tensor(names::POINTWISE, names::WEIGHT),
            Some(&bn),
            pointwise,
            owner,
        )
    }

    /// One op applied to `x`, as crate::nn::ops::OpBlock computes it in evaluation mode.
    fn op(&mut self, x: &str, op: Op, prefix: &str, channels: i64, stride: i64) -> Result<String, ExportError> {
        let (kernel, pad) = (op.kernel(), op.kernel() / 2);
        let pool = |name: &str| {
            let mut attributes = vec![
                attr_ints("kernel_shape", &[kernel, kernel]),
                attr_ints("strides", &[stride, stride]),
                attr_ints("pads", &[pad, pad, pad, pad]),
            ];
            if name == "AveragePool" {
                attributes.push(attr_int("count_include_pad", 1));
            }
            attributes
        };
        if let Some(shape) = op.dense_conv(channels, stride) {
            let hidden = self.node("Relu", &[x], Vec::new(), prefix);
            let weight = names::join(&names::join(prefix, names::CONV), names::WEIGHT);
            let bn = names::join(prefix, names::BN);
            return self.conv_bn(&hidden, &weight, Some(&bn), shape, prefix);
        }
        Ok(match (op, op.conv_blocks(channels, stride).as_slice()) {
            (Op::MaxPool3x3, _) => self.node("MaxPool", &[x], pool("MaxPool"), prefix),
            (Op::AvgPool3x3, _) => self.node("AveragePool", &[x], pool("AveragePool"), prefix),
            (_, []) if stride == 1 => x.to_string(),
            (_, []) => self.subsample(x, prefix),
            (_, &[only]) => self.depthwise_pointwise(x, prefix, only)?,
            (_, &[first, second, ..]) => {
                let hidden = self.depthwise_pointwise(x, &names::join(prefix, names::FIRST), first)?;
                let hidden = self.node("Relu", &[&hidden], Vec::new(), prefix);
                self.depthwise_pointwise(&hidden, &names::join(prefix, names::SECOND), second)?
            }
        })
    }

    /// The dense inputs of cell `k`, each brought to the cell's width and resolution by its rescaler.
    fn rescaled_inputs(&mut self, genotype: &Genotype, k: usize, dense: &[String]) -> Result<Vec<String>, ExportError> {
        let inputs = genotype.at_width(genotype.channels).cell_inputs(k);
        let mut rescaled = Vec::with_capacity(inputs.len());
        for (i, (x, input)) in dense.iter().zip(&inputs).enumerate() {
            let owner = names::input(k, i);
            let mut y = x.clone();
            if let Some(projection) = input.projection {
                let weight = names::join(&names::join(&owner, names::CONV), names::WEIGHT);
                let bn = names::join(&owner, names::BN);
                y = self.conv_bn(&y, &weight, Some(&bn), projection, &owner)?;
            }
            for _ in 0..input.halvings {
                y = self.subsample(&y, &owner);
            }
            rescaled.push(y);
        }
        Ok(rescaled)
    }

    /// The exact zeros a closed op adds, standing in for the sum of a node that gets nothing else.
    fn closed_op_zeros(&mut self, closed: &ClosedOp, channels: i64) -> Result<String, ExportError> {
        let y = self.op(&closed.input, closed.op, &closed.prefix, channels, closed.stride)?;
        let zero = self.constant(format!("{}:closed-gate", closed.prefix), Vec::new(), &[0.0]);
        Ok(self.node("Mul", &[&y, &zero], Vec::new(), &closed.prefix))
    }

    /// One cell, as crate::supernet::CellNet::forward computes it in evaluation mode: each node's batch norm
    /// over the sum of what its edges' open ops send it.
    fn cell(&mut self, genotype: &Genotype, k: usize, dense: &[String]) -> Result<String, ExportError> {
        let cell: &Cell = &genotype.cells[k];
        let channels = genotype.cell_channels(k) as i64;
        let mut inbox: Vec<Vec<String>> = vec![Vec::new(); cell.n_nodes];
        for (i, y) in self.rescaled_inputs(genotype, k, dense)?.into_iter().enumerate() {
            inbox[i].push(y);
        }
        // Ops whose gate is closed add exact zeros; one stands in for a node that gets nothing else.
        let mut closed: Vec<Option<ClosedOp>> = vec![None; cell.n_nodes];
        let output = cell.output();
        for (v, outgoing) in cell.evaluation_order() {
            let node = names::node(k, v);
            let terms = std::mem::take(&mut inbox[v]);
            let sum = match (terms.is_empty(), closed[v].take()) {
                (false, _) => self.sum(&terms, &node),
                (true, Some(stand_in)) => self.closed_op_zeros(&stand_in, channels)?,
                (true, None) => continue,
            };
            let h = self.batch_norm(&sum, &names::join(&node, names::BN), &node)?;
            if v == output {
                return Ok(h);
            }
            for edge in outgoing {
                let stride = cell.stride(edge) as i64;
                for &op in &edge.ops {
                    let prefix = names::op(k, edge.id, op);
                    if self.weights.gate_open(&prefix)? {
                        let y = self.op(&h, op, &prefix, channels, stride)?;
                        inbox[edge.to].push(y);
                    } else if closed[edge.to].is_none() {
                        closed[edge.to] = Some(ClosedOp {
                            input: h.clone(),
                            op,
                            prefix,
                            stride,
                        });
                    }
                }
            }
        }
        Err(ExportError::NoPathToOutput(k))
    }
}

/// An op with a closed gate, remembered in case its target node gets nothing else.
#[derive(Clone, Debug)]
struct ClosedOp {
    /// The value the op reads.
    input: String,
    /// Which op.
    op: Op,
    /// Its tensor-name prefix (crate::nn::tensor_names::op).
    prefix: String,
    /// Its stride.
    stride: i64,
}

/// The graph of `genotype` with `weights`; returns it with the number of weight scalars it holds.
pub fn build(genotype: &Genotype, weights: &Weights) -> Result<GraphProto, ExportError> {
    let mut builder = Builder {
        weights,
        nodes: Vec::new(),
        initializers: Vec::new(),
        values: 0,
    };
    let stem_shape = genotype.at_width(genotype.channels).stem();
    let stem_conv = names::join(&names::join(names::STEM, names::CONV), names::WEIGHT);
    let stem_bn = names::join(names::STEM, names::BN);
    let stem = builder.conv_bn(INPUT, &stem_conv, Some(&stem_bn), stem_shape, names::STEM)?;
    let mut dense = vec![stem];
    for k in 0..genotype.cells.len() {
        let out = builder.cell(genotype, k, &dense)?;
        dense.push(out);
    }
    let last = genotype.cells.len() - 1;
    let tower = names::tower(last);
    let pooled = builder.node(
        "GlobalAveragePool",
        &[dense.last().expect("one cell at least")],
        Vec::new(),
        &tower,
    );
    let flat = builder.node("Flatten", &[&pooled], vec![attr_int("axis", 1)], &tower);
    let (weight_name, bias_name) = (names::join(&tower, names::WEIGHT), names::join(&tower, names::BIAS));
    let weight = weights.get(&weight_name)?;
    let bias = weights.get(&bias_name)?;
    let w = builder.constant(weight_name, weight.dims, &weight.values);
    let b = builder.constant(bias_name, bias.dims, &bias.values);
    builder.nodes.push(NodeProto {
        input: vec![flat, w, b],
        output: vec![OUTPUT.into()],
        name: Some(format!("{tower}/gemm")),
        op_type: Some("Gemm".into()),
        attribute: vec![attr_int("transB", 1)],
    });
    let input = genotype.input;
    Ok(GraphProto {
        node: builder.nodes,
        name: Some("spidernet".into()),
        initializer: builder.initializers,
        doc_string: None,
        input: vec![value_info(
            INPUT,
            &[
                Err("batch"),
                Ok(input.channels as i64),
                Ok(input.height as i64),
                Ok(input.width as i64),
            ],
        )],
        output: vec![value_info(OUTPUT, &[Err("batch"), Ok(genotype.classes as i64)])],
    })
}
