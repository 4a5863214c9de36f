"""Exporting a packaged sentence-transformers model to ONNX once: fused, maybe int8 quantised."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from matcher.embed.base import PACKAGED_MODELS, EncoderUnavailableError

# Bump when the export/optimise/quantise steps change so old files are rebuilt.
RECIPE = 1
# fp32: the torch vectors. int8: dynamic per-channel int8 of every weight (fastest, but one
# activation scale per tensor moves ~5% of top-10 results). int8-block: int8 weights and int8
# arithmetic in blocks of 128 along each dot product (a scale per block, activations included),
# attention's projections too, so queries keep ~98% of top-10 results (benchmarks/RESULTS.md).
VARIANTS = ("fp32", "int8", "int8-block")
BLOCK = 128  # int8-block: values per scale; 32 is closer to fp32 but slower here
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxExportError(EncoderUnavailableError):
    """Exporting, optimising or quantising the model to ONNX failed."""


def require_onnxruntime() -> Any:
    """The onnxruntime module, or an error saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise EncoderUnavailableError(
            "the onnx backends need onnxruntime: pip install onnxruntime onnx "
            "(or use backend='torch')"
        ) from exc
    return onnxruntime


def model_dir(name: str) -> Path:
    """The directory of a packaged model's sentence-transformers files."""
    locate = PACKAGED_MODELS.get(name)
    path = Path(locate() if locate else name)
    if locate is None and not path.is_dir():
        raise EncoderUnavailableError(
            f"model {name!r} is neither a packaged model ({', '.join(PACKAGED_MODELS)}) "
            "nor a local directory"
        )
    return path


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file of the model as a dict (empty when it is missing or unreadable)."""
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _weights_sha256(model_dir: Path) -> str:
    """Hash of the weight files and config, so a changed model invalidates the export."""
    files = sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("pytorch_model*.bin"))
    if not files:
        raise EncoderUnavailableError(f"no model weights (*.safetensors, *.bin) in {model_dir}")
    digest = hashlib.sha256()
    for path in [*files, model_dir / "config.json"]:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _export_fp32(model_dir: Path, target: Path, work: Path) -> None:
    """Export with the TorchScript exporter, then fuse with ORT's BERT optimiser."""
    try:
        import torch
        from onnxruntime.transformers.optimizer import optimize_model
        from transformers import AutoConfig, AutoModel
    except ImportError as exc:
        raise OnnxExportError(
            f"exporting to ONNX needs torch, transformers, onnx and onnxruntime ({exc}): "
            "pip install onnx onnxruntime"
        ) from exc
    config = AutoConfig.from_pretrained(model_dir)
    if config.model_type != "bert":  # the fusions below assume a BERT-style encoder
        raise OnnxExportError(f"only BERT-family models can be exported, not {config.model_type!r}")
    # Eager attention exports as plain MatMul/Softmax, which the optimiser fuses into Attention.
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    # A padded example so the trace keeps the masking path (an all-ones mask may be skipped).
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    example = (torch.full((2, 8), 1000), mask, torch.zeros((2, 8), dtype=torch.long))
    axes = {k: {0: "batch", 1: "sequence"} for k in (*_INPUTS, "last_hidden_state")}
    raw = work / "raw.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation noise; the tests check vectors
        # dynamo=False: the torch.export exporter needs onnxscript, which we do not ship.
        torch.onnx.export(
            LastHidden(),
            example,
            str(raw),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )
    optimized = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    if optimized.get_fused_operator_statistics().get("Attention", 0) == 0:
        raise OnnxExportError("the ONNX optimiser fused no attention layers")
    optimized.save_model_to_file(str(target))


def _quantize_int8(source: Path, target: Path) -> None:
    """Per-channel dynamic int8 quantisation of the fused fp32 graph."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused contrib ops defeat shape inference; the quantiser then needs the float hint.
    quantize_dynamic(
        source,
        target,
        per_channel=True,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _split_attention(model: Any) -> None:
    """Fused Attention → its QKV MatMul + Split + MultiHeadAttention (same result, ~1e-6).

    The fused op keeps its projection weights inside, out of reach of block quantisation; as a
    plain MatMul the projection is quantised like every other linear layer.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type != "Attention" or len(node.input) != 4 or node.input[1] not in weights:
            nodes.append(node)
            continue
        x, w, bias, mask_index = node.input
        heads = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "num_heads")
        hidden = int(weights[w].dims[1]) // 3
        sizes = numpy_helper.from_array(
            np.array([hidden] * 3, dtype=np.int64), f"{node.name}_split"
        )
        graph.initializer.append(sizes)
        qkv = [f"{node.name}_{c}" for c in "qkv"]
        nodes += [
            helper.make_node("MatMul", [x, w], [f"{node.name}_qkv"], name=f"{node.name}_MatMul"),
            helper.make_node(
                "Split", [f"{node.name}_qkv", sizes.name], qkv, name=f"{node.name}_Split", axis=2
            ),
            # Q, K, V biases stay fp32; mask_index holds each row's length, as for Attention.
            helper.make_node(
                "MultiHeadAttention",
                [*qkv, bias, mask_index],
                list(node.output),
                name=f"{node.name}_MHA",
                domain="com.microsoft",
                num_heads=heads,
            ),
        ]
    del graph.node[:]
    graph.node.extend(nodes)


def _quantize_int8_blocks(source: Path, target: Path, block: int = BLOCK) -> None:
    """Every constant-weight MatMul → MatMulNBits: 8-bit symmetric weights, one scale per block.

    accuracy_level 4 makes ONNX Runtime quantise each activation row per block too and multiply
    in int8 (VNNI where the CPU has it), so scales follow the data far more closely than
    dynamic quantisation's one scale per tensor.
    """
    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.capi._pybind_state import quantize_matmul_8bits

    model = onnx.load(str(source))
    _split_attention(model)
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        tensor = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if tensor is None or len(tensor.dims) != 2:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(tensor).astype(np.float32)
        k, n = w.shape
        blocks = -(-k // block)
        padded = np.ascontiguousarray(np.pad(w, ((0, blocks * block - k), (0, 0))))
        packed = np.zeros((n, blocks, block), dtype=np.uint8)
        scales = np.zeros((n, blocks), dtype=np.float32)
        zero_points = np.zeros((n, blocks), dtype=np.uint8)  # unused: symmetric
        quantize_matmul_8bits(packed, padded, scales, zero_points, block, n, k, True)
        graph.initializer.extend(
            [
                numpy_helper.from_array(packed, f"{tensor.name}_Q8"),
                numpy_helper.from_array(scales, f"{tensor.name}_scales"),
            ]
        )
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], f"{tensor.name}_Q8", f"{tensor.name}_scales"],
                list(node.output),
                name=f"{node.name}_Q8",
                domain="com.microsoft",
                K=k,
                N=n,
                bits=8,
                block_size=block,
                accuracy_level=4,
            )
        )
    used = {name for node in nodes for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(target))


def ensure_exported(name: str, variant: str, cache_dir: Path) -> Path:
    """The ONNX file of a model variant, exported atomically unless a valid one is cached."""
    onnxruntime = require_onnxruntime()

    source = model_dir(name)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
    path = Path(cache_dir) / "onnx" / f"{slug}-{variant}" / "model.onnx"
    meta_path = path.with_name("meta.json")
    meta = {
        "model": name,
        "variant": variant,
        "onnxruntime": onnxruntime.__version__,
        "weights_sha256": _weights_sha256(source),
        "recipe": RECIPE,
    }
    if path.is_file() and read_json(meta_path) == meta:
        return path
    # int8 variants are quantised from the fp32 export, which is cached too (exported once).
    fp32 = ensure_exported(name, "fp32", cache_dir) if variant != "fp32" else None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Build beside the target so os.replace is atomic; the meta goes last, marking it complete.
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
            work = Path(tmp)
            if fp32 is None:
                _export_fp32(source, work / "model.onnx", work)
            elif variant == "int8-block":
                _quantize_int8_blocks(fp32, work / "model.onnx")
            else:
                _quantize_int8(fp32, work / "model.onnx")
            os.replace(work / "model.onnx", path)
            (work / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            os.replace(work / "meta.json", meta_path)
    except OnnxExportError:
        raise
    except Exception as exc:
        raise OnnxExportError(
            f"exporting {name!r} to ONNX ({variant}) under {path.parent} failed: {exc}; "
            "delete that folder and retry, or use backend='torch'"
        ) from exc
    return path
