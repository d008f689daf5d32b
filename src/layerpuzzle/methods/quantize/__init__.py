"""Post-training quantization and sparsification of any checkpoint with llm-compressor.

GPTQ, AWQ and SmoothQuant (MKA's Table 1) and SparseGPT (MKA's Table 2) run through llm-compressor's
``oneshot`` (``llmcompressor==0.14.0.1``, a core dependency); this package imports without it.
:mod:`.pipeline` is the workflow step (rule ``oneshot_compress``). See docs/quantization.md.
"""

from .checkpoint import RECORD, load_record, save_quantized, weights_bytes
from .run import calibration_loader, quantize, zero_fractions
from .schemes import KINDS, SLUG_FORMS, Scheme, build_recipe, check_model, parse_scheme, recipe_yaml

__all__ = ["KINDS", "RECORD", "SLUG_FORMS", "Scheme", "build_recipe", "calibration_loader", "check_model",
           "load_record", "parse_scheme", "quantize", "recipe_yaml", "save_quantized", "weights_bytes",
           "zero_fractions"]
