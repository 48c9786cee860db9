"""A LightGBM forest compiled to native code, for scoring a request's few hundred candidates in a fraction of
``Booster.predict``'s time with the same numbers.

``Booster.predict`` walks every tree node by node, and on a request's candidates about half of its branches are
mispredicted. Here each tree becomes one LLVM function that scores eight rows at once without a branch, as in
QuickScorer (Lucchese et al., SIGIR 2015): the tree's leaves are numbered left to right and a bit mask starts
with all of them; every split whose row goes right clears the leaves of its left subtree, and the row's leaf is
the lowest bit left (a leaf left of it shares an ancestor with it that went right; no ancestor of it went right
with it on the left). The rows are laid out by column, so each split reads one vector of a feature. The decision
at a split follows LightGBM's ``NumericalDecision``: a value within ``1e-35`` of zero reads as zero (LightGBM
drops such values from a dense row), NaN reads as zero unless the split's missing type is NaN, and a split whose
missing type matches sends the row to its default side. Trees are summed per row in LightGBM's order in double
precision, and LLVM is not allowed to reassociate the sum, so the raw score equals
``Booster.predict(raw_score=True)`` bit for bit. llvmlite (its current pass manager) compiles the module.

``compile_forest`` returns None, with the reason logged, for what it does not cover (categorical splits, trees of
more than 64 leaves, several trees per iteration, llvmlite missing); the caller then keeps ``Booster.predict``.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: LightGBM's kZeroThreshold, a float constant compared against doubles.
ZERO_THRESHOLD = float(np.float32(1e-35))
LANES = 8  # rows per vector (one AVX-512 register of doubles; LLVM splits it where vectors are narrower)
MAX_LEAVES = 64  # one bit per leaf in a 64-bit mask
_ENTRY = "forest_raw"
_COMPILE_LOCK = threading.Lock()


class UnsupportedForest(ValueError):
    """The model uses something this compiler does not reproduce exactly."""


class CompiledForest:
    """The raw score (the sum of the trees) of a compiled forest. ``objective`` is LightGBM's, e.g. ``binary
    sigmoid:1``; ``sigmoid`` is its scale for the binary objective (P = 1 / (1 + exp(-sigmoid * raw))), else None;
    ``raw_is_score`` says the objective's score is the raw score itself (lambdarank)."""

    def __init__(self, owners: Any, address: int, n_features: int, objective: str) -> None:
        self._owners = owners  # the LLVM context and engine holding the machine code: alive as long as the pointer
        self._function = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p)(address)
        self.n_features = n_features
        self.objective = objective
        self.raw_is_score = objective.startswith("lambdarank")
        self.sigmoid = float(objective.split(":", 1)[1]) if objective.startswith("binary sigmoid:") else None

    def raw(self, F: np.ndarray) -> np.ndarray:
        if F.ndim != 2 or F.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {F.shape}")
        n = len(F)
        padded = -(-n // LANES) * LANES
        columns = np.zeros((self.n_features, padded), dtype=np.float64)  # by feature, rows padded to whole vectors
        columns[:, :n] = F.T
        out = np.empty(padded, dtype=np.float64)
        if n:
            self._function(columns.ctypes.data, padded, out.ctypes.data)
        return out[:n]


def compile_forest(booster: Any) -> CompiledForest | None:
    """Compile ``booster`` (a ``lightgbm.Booster``), or None when it cannot be compiled exactly."""
    try:
        dump = booster.dump_model()
        module_ir = forest_ir(dump)
        return _compile(module_ir, int(dump["max_feature_idx"]) + 1, str(dump.get("objective", "")))
    except (UnsupportedForest, ImportError, RuntimeError) as error:
        log.warning("fusion model not compiled, LightGBM's predict serves it: %s", error)
        return None


def forest_ir(dump: dict[str, Any]) -> str:
    """LLVM IR for ``void forest_raw(double* columns, i64 n_padded, double* out)``: ``columns`` holds feature
    ``f`` of row ``r`` at ``f * n_padded + r``, and ``n_padded`` is a multiple of ``LANES``."""
    from llvmlite import ir

    if int(dump.get("num_tree_per_iteration", 1)) != 1:
        raise UnsupportedForest("several trees per iteration (multiclass)")
    double, i64 = ir.DoubleType(), ir.IntType(64)
    rows_vector = ir.VectorType(double, LANES)
    pointer = double.as_pointer()
    module = ir.Module(name="fusion_forest")
    tree_type = ir.FunctionType(rows_vector, (pointer, i64, i64))
    trees = []
    for tree in dump["tree_info"]:
        function = ir.Function(module, tree_type, name=f"tree_{tree['tree_index']}")
        function.linkage = "internal"
        function.attributes.add("noinline")  # one small function a tree: inlining 150 costs compile time only
        _emit_tree(ir, module, function, tree["tree_structure"], tree["tree_index"])
        trees.append(function)

    forest = ir.Function(module, ir.FunctionType(ir.VoidType(), (pointer, i64, pointer)), name=_ENTRY)
    columns, n_padded, out = forest.args
    entry, loop, body, done = (forest.append_basic_block(name) for name in ("entry", "loop", "body", "done"))
    builder = ir.IRBuilder(entry)
    builder.branch(loop)
    builder.position_at_end(loop)
    first_row = builder.phi(i64, name="first_row")
    first_row.add_incoming(ir.Constant(i64, 0), entry)
    builder.cbranch(builder.icmp_signed("<", first_row, n_padded), body, done)
    builder.position_at_end(body)
    total = ir.Constant(rows_vector, [0.0] * LANES)
    for function in trees:  # LightGBM's order, plain fadd: no reassociation without fast-math flags
        total = builder.fadd(total, builder.call(function, [columns, n_padded, first_row]))
    target = builder.bitcast(builder.gep(out, [first_row]), rows_vector.as_pointer())
    builder.store(total, target, align=8)
    following = builder.add(first_row, ir.Constant(i64, LANES))
    first_row.add_incoming(following, body)
    builder.branch(loop)
    builder.position_at_end(done)
    builder.ret_void()
    return str(module)


def _leaves_in_order(node: dict[str, Any], leaves: list[float], splits: list[tuple[dict[str, Any], int, int]]
                     ) -> None:
    """Leaf values left to right, and each split with the range of leaf numbers of its left subtree."""
    if "leaf_value" in node:
        leaves.append(float(node["leaf_value"]))
        return
    start = len(leaves)
    _leaves_in_order(node["left_child"], leaves, splits)
    splits.append((node, start, len(leaves)))
    _leaves_in_order(node["right_child"], leaves, splits)


def _emit_tree(ir: Any, module: Any, function: Any, root: dict[str, Any], index: int) -> None:
    double, i64, i1 = ir.DoubleType(), ir.IntType(64), ir.IntType(1)
    doubles, masks = ir.VectorType(double, LANES), ir.VectorType(i64, LANES)
    columns, n_padded, first_row = function.args
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    leaves: list[float] = []
    splits: list[tuple[dict[str, Any], int, int]] = []
    _leaves_in_order(root, leaves, splits)
    if len(leaves) > MAX_LEAVES:
        raise UnsupportedForest(f"a tree of {len(leaves)} leaves (at most {MAX_LEAVES})")

    def splat(kind: Any, value: Any) -> Any:
        return ir.Constant(ir.VectorType(kind, LANES), [value] * LANES)

    zero, tiny_limit = splat(double, 0.0), splat(double, ZERO_THRESHOLD)
    everything = splat(i64, -1)
    fabs = _intrinsic(ir, module, "llvm.fabs.v8f64", doubles, (doubles,))
    column_of: dict[int, Any] = {}
    mask = everything
    for node, start, stop in splits:
        if node.get("decision_type") != "<=":
            raise UnsupportedForest(f"split decision {node.get('decision_type')!r} (categorical)")
        missing = node.get("missing_type", "None")
        if missing not in ("None", "Zero", "NaN"):
            raise UnsupportedForest(f"missing type {missing!r}")
        feature = int(node["split_feature"])
        if feature not in column_of:
            offset = builder.add(builder.mul(ir.Constant(i64, feature), n_padded), first_row)
            address = builder.bitcast(builder.gep(columns, [offset]), doubles.as_pointer())
            column_of[feature] = builder.load(address, align=8)
        value = column_of[feature]
        is_nan = builder.fcmp_unordered("uno", value, value)
        if missing != "NaN":
            value = builder.select(is_nan, zero, value)
        tiny = builder.fcmp_ordered("<=", builder.call(fabs, [value]), tiny_limit)
        value = builder.select(tiny, zero, value)
        goes_left = builder.fcmp_ordered("<=", value, splat(double, float(node["threshold"])))
        default_left = splat(i1, 1 if node.get("default_left") else 0)
        if missing == "NaN":
            goes_left = builder.select(is_nan, default_left, goes_left)
        elif missing == "Zero":
            goes_left = builder.select(tiny, default_left, goes_left)
        left_leaves = ((1 << (stop - start)) - 1) << start
        kept = splat(i64, _signed64(~left_leaves & ((1 << 64) - 1)))
        mask = builder.and_(mask, builder.select(goes_left, everything, kept))

    cttz = _intrinsic(ir, module, "llvm.cttz.v8i64", masks, (masks, i1))
    leaf = builder.call(cttz, [mask, ir.Constant(i1, 0)])
    table = ir.GlobalVariable(module, ir.ArrayType(double, len(leaves)), name=f"leaves_{index}")
    table.linkage, table.global_constant = "internal", True
    table.initializer = ir.Constant(ir.ArrayType(double, len(leaves)), leaves)
    values = ir.Constant(doubles, ir.Undefined)
    for lane in range(LANES):
        number = builder.extract_element(leaf, ir.Constant(ir.IntType(32), lane))
        entry = builder.load(builder.gep(table, [ir.Constant(i64, 0), number]))
        values = builder.insert_element(values, entry, ir.Constant(ir.IntType(32), lane))
    builder.ret(values)


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _intrinsic(ir: Any, module: Any, name: str, result: Any, arguments: tuple[Any, ...]) -> Any:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(result, arguments), name=name)


def _compile(module_ir: str, n_features: int, objective: str) -> CompiledForest:
    import llvmlite.binding as llvm

    # An LLVM context is not thread-safe and llvmlite's global one is numba's too (Whisper's timing code JITs in
    # the media worker): each forest gets a context of its own, and our compilations take turns.
    with _COMPILE_LOCK:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_default_triple()
        machine = target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                               features=llvm.get_host_cpu_features().flatten(), opt=2)
        context = llvm.create_context()
        module = llvm.parse_assembly(module_ir, context=context)
        module.verify()
        tuning = llvm.create_pipeline_tuning_options(speed_level=2)
        passes = llvm.create_pass_builder(machine, tuning)
        passes.getModulePassManager().run(module, passes)
        engine = llvm.create_mcjit_compiler(module, machine)
        engine.finalize_object()
        return CompiledForest((context, engine), engine.get_function_address(_ENTRY), n_features, objective)
