"""spidernet_torch: a trained spidernet run folder (genotype.json, weights.safetensors, normalization.json) as a
PyTorch module, for inference and fine-tuning. Start with `spidernet_torch.load(run_dir)`."""
from .model import RunFolderError, SpiderNet, load
from .network import GATE_INIT, OPS, Cell, ConvBn, Net, Node, Op, Rescaler, Stem, batch_norm, padding
from .safetensors import SafetensorsError, read_safetensors, write_safetensors

__version__ = "0.1.0"
__all__ = ["load", "SpiderNet", "RunFolderError", "Net", "Cell", "ConvBn", "Node", "Op", "Rescaler", "Stem",
           "batch_norm", "padding", "GATE_INIT", "OPS", "read_safetensors", "write_safetensors", "SafetensorsError"]
