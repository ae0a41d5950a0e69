"""Make an exported synthesizer graph deterministic: its random draws become inputs we feed.

RVC's exporters draw noise inside the graph (``torch.randn_like`` -> ``RandomNormalLike``):
w-okada and deiteris for the prior and the NSF excitation, the WebUI for the excitation
only. onnxruntime seeds those per process, so output could not be reproduced. Each
random node is replaced by the head of ``feed`` reshaped to ``Shape(x)`` (scaled to the
node's mean/scale or low/high, cast like the original), ``feed`` a new flat float32 input. The
node's role decides what rtvc feeds it: ``prior`` (normal noise that depends on the content
features, not on f0: the latent noise), ``source`` (normal noise that depends on ``pitchf``:
the excitation noise), or ``other`` (fixed seeded values, e.g. the WebUI's random sine
phase, which it zeroes anyway). Editing the protobuf executes nothing from the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtvc.errors import ModelLoadError

__all__ = ["NoiseFeed", "make_deterministic"]

_RANDOM = {"RandomNormalLike": "normal", "RandomUniformLike": "uniform", "RandomNormal": "normal",
           "RandomUniform": "uniform"}
_UNSUPPORTED = ("Multinomial", "Bernoulli")


@dataclass(frozen=True, slots=True)
class NoiseFeed:
    """One replaced random node: the graph input that now carries its values."""

    input: str
    role: str  # "prior" | "source" | "other"
    kind: str  # "normal" | "uniform"
    shape: tuple[int, ...] | None  # fixed shape (RandomNormal / RandomUniform), None for the *Like ops

    @property
    def shape_output(self) -> str:
        """Graph output giving the shape the node drew (the feed's head of that size is used)."""
        return f"{self.input}_shape"


def _ancestors(graph: Any, start: str) -> set[str]:
    """Graph inputs that ``start`` (a value name) depends on."""
    producer = {out: node for node in graph.node for out in node.output}
    inputs = {i.name for i in graph.input}
    seen, stack, found = set(), [start], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in inputs:
            found.add(name)
        node = producer.get(name)
        if node is not None:
            stack.extend(n for n in node.input if n)
    return found


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _const(name: str, values: list, dtype: int, dims: list[int]) -> Any:
    from onnx import helper

    return helper.make_node("Constant", [], [name], value=helper.make_tensor(f"{name}_value", dtype, dims, values))


def _replacement(node: Any, feed: str, opset: int, prefix: str) -> list[Any]:
    """Nodes computing ``node``'s output from the head of ``feed`` (standard normal or uniform [0, 1) values).

    The output's shape is also a graph output, ``<prefix>_shape``, so the caller can check what it fed.
    """
    from onnx import TensorProto, helper

    kind = _RANDOM[node.op_type]
    like = node.op_type.endswith("Like")
    out = node.output[0]
    made: list[Any] = []
    if like:
        made.append(helper.make_node("Shape", [node.input[0]], [f"{prefix}_shape"]))
    else:
        shape = list(_attr(node, "shape", []))
        made.append(_const(f"{prefix}_shape", shape, TensorProto.INT64, [len(shape)]))
    made += [helper.make_node("ReduceProd", [f"{prefix}_shape"], [f"{prefix}_size"], keepdims=1),
             _const(f"{prefix}_zero", [0], TensorProto.INT64, [1]),
             helper.make_node("Slice", [feed, f"{prefix}_zero", f"{prefix}_size"], [f"{prefix}_head"]),
             helper.make_node("Reshape", [f"{prefix}_head", f"{prefix}_shape"], [f"{prefix}_raw"])]
    if kind == "normal":
        scale, offset = float(_attr(node, "scale", 1.0)), float(_attr(node, "mean", 0.0))
    else:
        low, high = float(_attr(node, "low", 0.0)), float(_attr(node, "high", 1.0))
        scale, offset = high - low, low
    made += [_const(f"{prefix}_scale", [scale], TensorProto.FLOAT, []),
             _const(f"{prefix}_offset", [offset], TensorProto.FLOAT, [])]
    made.append(helper.make_node("Mul", [f"{prefix}_raw", f"{prefix}_scale"], [f"{prefix}_scaled"]))
    made.append(helper.make_node("Add", [f"{prefix}_scaled", f"{prefix}_offset"], [f"{prefix}_value"]))
    dtype = _attr(node, "dtype", None)
    if dtype is None and like and opset >= 15:
        made.append(helper.make_node("CastLike", [f"{prefix}_value", node.input[0]], [out]))
    else:
        made.append(helper.make_node("Cast", [f"{prefix}_value"], [out], to=int(dtype or TensorProto.FLOAT)))
    return made


def make_deterministic(model: Any, *, phone: str, pitchf: str | None, opset: int) -> tuple[Any, list[NoiseFeed]]:
    """A copy of ``model`` whose random nodes read new inputs; returns it and what each input carries."""
    import onnx
    from onnx import TensorProto, helper

    graph = model.graph
    for node in graph.node:
        if node.op_type in _UNSUPPORTED:
            raise ModelLoadError(f"the graph draws random numbers with {node.op_type}; not supported")
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            if any(n.op_type in _RANDOM for g in _subgraphs(node) for n in g.node):
                raise ModelLoadError(f"the graph draws random numbers inside a {node.op_type} body; not supported")
    patched = onnx.ModelProto()
    patched.CopyFrom(model)
    nodes, feeds = [], []
    for node in patched.graph.node:
        if node.op_type not in _RANDOM:
            nodes.append(node)
            continue
        deps = _ancestors(patched.graph, node.input[0]) if node.input else set()
        kind = _RANDOM[node.op_type]
        role = "other" if kind != "normal" else "source" if pitchf in deps else "prior" if phone in deps else "other"
        name = f"rtvc_noise_{len(feeds)}"
        shape = None if node.op_type.endswith("Like") else tuple(_attr(node, "shape", []))
        feeds.append(NoiseFeed(name, role, kind, shape))
        nodes.extend(_replacement(node, name, opset, name))
    del patched.graph.node[:]
    patched.graph.node.extend(nodes)
    for feed in feeds:
        patched.graph.input.append(helper.make_tensor_value_info(feed.input, TensorProto.FLOAT, ["n"]))
        patched.graph.output.append(helper.make_tensor_value_info(feed.shape_output, TensorProto.INT64, ["rank"]))
    roles = [f.role for f in feeds]
    if roles.count("prior") > 1 or roles.count("source") > 1:
        raise ModelLoadError(f"the graph draws noise in {len(roles)} places ({', '.join(roles)}); "
                             "an RVC synthesizer draws at most one prior and one excitation noise")
    return patched, feeds


def _subgraphs(node: Any) -> list[Any]:
    out = []
    for a in node.attribute:
        if a.HasField("g"):
            out.append(a.g)
        out.extend(a.graphs)
    return out
