"""Predict the TFLM tensor arena of a model: a replay of TFLM's own allocation sequence.

Works on a :class:`~mcunas.cost.flatbuffer.TfliteModel`, whether read from a real
``.tflite`` file or synthesised from an architecture by :mod:`mcunas.cost.tflite_graph`,
so both paths share one set of rules.

TFLM carves one arena from both ends (``SingleArenaBufferAllocator``): persistent
allocations come down from the end (each aligned *down* to its own alignment, so padding
depends on where the arena ends), temporary and planned memory goes up from the 16-aligned
start.  Loading fails as soon as the two meet, at any of these moments, replayed here in
``MicroInterpreter::AllocateTensors`` order (``micro_allocator.cc``,
``micro_interpreter.cc``, ``micro_interpreter_graph.cc``):

1. before the model: the allocator objects (:data:`~mcunas.cost.tflm_kernels.Target`), and
   where the model has VAR_HANDLE ops, ``MicroResourceVariables`` with one entry per distinct
   variable (the pip interpreter creates it; a variable's own buffer comes from the first
   ASSIGN_VARIABLE's Prepare, :func:`resource_buffers`);
2. ``StartModelAllocation``: the builtin-data allocator; a head buffer for 12 scratch-buffer
   requests; ``SubgraphAllocations``; one ``TfLiteEvalTensor`` per tensor and one
   ``NodeAndRegistration`` per operator, per subgraph;
3. per operator, its parsed builtin options; then every kernel's Init (OpData);
4. every kernel's Prepare: temporary ``TfLiteTensor`` structs (with quantisation struct and
   zero-point array) on the head, per-channel arrays in the tail, scratch requests (the
   request buffer grows to ``count + 12`` entries after each op);
5. ``FinishModelAllocation``: scratch handles, variable tensors (persistent), then
   ``CommitStaticMemoryPlan``: a ``size_t`` offset per subgraph and an ``AllocationInfo``
   per tensor and scratch buffer plus the
   greedy planner's 40 B per planned buffer, as temporaries on top of the request buffer —
   for small models this, not the plan, sets the arena — then the planned head
   (:mod:`mcunas.cost.tflm_planner`), with the subgraphs that IF / WHILE / CALL_ONCE run
   planned inside their caller's scope (:func:`model_buffers`);
6. the interpreter's input/output tables and a persistent ``TfLiteTensor`` (with
   quantisation) per model input and output.

Every check is replayed for each of the 16 possible arena-end alignments; the prediction is
the smallest size from which *every* larger size loads, so it is never below the smallest
size a search over sizes can find.  Where a kernel's Prepare is not modelled call by call,
all its temporaries are counted as alive together with all its persistent buffers (safe).
"""

from __future__ import annotations

from mcunas.cost.flatbuffer import Subgraph, TfliteModel
from mcunas.cost.tflm_kernels import (MAX_SCRATCH_BUFFERS_PER_OP, PLANNER_BYTES_PER_BUFFER, Target,
                                      get_target, kernel_cost)
from mcunas.cost.tflm_planner import ALIGN_BYTES, Buffer, align_up, peak_bytes
from mcunas.errors import UserError

ARENA_ALIGN = ALIGN_BYTES  # MicroArenaBufferAlignment(): kernels' persistent buffers, planned tensors

__all__ = ["predict_arena", "predict_arenas", "plan_buffers", "planned_tensors", "check_supported"]


def planned_tensors(sg: Subgraph) -> dict[int, tuple[int, int]]:
    """The tensors TFLM plans (no constant data, not variable, non-zero size, used), in index
    order, with their scope lifetimes ``(first, last)``."""
    scopes = len(sg.operators)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t in (*sg.inputs, *sg.outputs):
        first[t] = last[t] = 0
    for scope, op in enumerate(sg.operators, start=1):
        for t in op.outputs:
            first[t] = last[t] = scope
        for t in op.inputs:
            if t >= 0:
                last[t] = scope
    for t in sg.outputs:
        last[t] = scopes
    return {i: (first[i], last[i]) for i, tensor in enumerate(sg.tensors)
            if not tensor.has_data and not tensor.is_variable and tensor.nbytes and i in first}


def plan_buffers(sg: Subgraph, scratch: list[tuple[int, int]] = ()) -> list[Buffer]:
    """The planner's buffers: the planned tensors with their scope lifetimes, then the
    scratch buffers ``(bytes, op index)`` in request order."""
    buffers = [Buffer(align_up(sg.tensors[i].nbytes), first, last)
               for i, (first, last) in planned_tensors(sg).items()]
    buffers += [Buffer(align_up(nbytes), op + 1, op + 1) for nbytes, op in scratch]
    return buffers


class _Arena:
    """A log of tail allocations ``(bytes, alignment)`` and head checks, replayed per end alignment."""

    def __init__(self):
        self.events: list[tuple] = []

    def persistent(self, nbytes: int, align: int) -> None:
        if nbytes:
            self.events.append(("tail", nbytes, align))

    def need(self, head_bytes: int, tail_align: int = 1) -> None:
        """The head must reach ``head_bytes`` (from the arena start) below the current tail
        (aligned down to ``tail_align``)."""
        last = self.events[-1] if self.events else None
        if last and last[0] == "head" and last[2] == tail_align:  # no tail move in between: keep the larger
            self.events[-1] = ("head", max(last[1], head_bytes), tail_align)
        else:
            self.events.append(("head", head_bytes, tail_align))

    def tail_used(self, end: int) -> int:
        tail = end
        for kind, n, align in self.events:
            if kind == "tail":
                tail = (tail - n) // align * align
        return end - tail

    def smallest_safe_size(self) -> int:
        """Smallest N such that every arena of N bytes or more passes every check."""
        need_by_residue = []
        for residue in range(ARENA_ALIGN):
            end = (1 << 40) + residue  # arena start is 16-aligned; only the end's residue matters
            tail, need = end, 0
            for kind, n, align in self.events:
                if kind == "tail":
                    tail = (tail - n) // align * align
                else:
                    need = max(need, n + (end - tail) + (tail - tail // align * align))
            need_by_residue.append(need)
        size = max(need_by_residue)
        while all(_first_at_or_above(size - 1, r) >= need_by_residue[r] for r in range(ARENA_ALIGN)):
            size -= 1
        return size


def _first_at_or_above(n: int, residue: int) -> int:
    return n + (residue - n) % ARENA_ALIGN


def _temp_tensor_bytes(sg: Subgraph, index: int, target: Target, start: int) -> int:
    """Head position after allocating tensor ``index`` as a temporary TfLiteTensor at ``start``."""
    pos = align_up(start, target.struct_align) + target.tensor_bytes
    t = sg.tensors[index]
    if t.scale and t.zero_point:
        pos = align_up(pos, target.struct_align) + target.affine_quantization_bytes
        pos = align_up(pos, 4) + 4 + 4 * len(t.scale)
    return pos


def _persistent_tensor(arena: _Arena, sg: Subgraph, index: int, target: Target) -> None:
    arena.persistent(target.tensor_bytes, target.struct_align)
    t = sg.tensors[index]
    if t.scale and t.zero_point:
        arena.persistent(target.affine_quantization_bytes, target.struct_align)
        arena.persistent(4 + 4 * len(t.scale), 4)


MEMORY_PLANS = ("stock", "offline")


def predict_arena(model: TfliteModel, target: str = "x86_64", memory_plan: str = "stock") -> dict:
    """``sram_tflm_bytes`` (smallest arena that loads) with its split, for ``target``.

    The head is planned by TFLM's greedy planner, around the offsets of the model's own
    offline plan where it carries one; ``memory_plan="offline"`` predicts the model with the
    plan :mod:`mcunas.cost.memory_plan` would embed instead (and adds the plan's lower bound,
    ``tflm_head_bound_bytes``).
    """
    return predict_arenas(model, target, (memory_plan,))[memory_plan]


def predict_arenas(model: TfliteModel, target: str = "x86_64", memory_plans=MEMORY_PLANS) -> dict[str, dict]:
    """:func:`predict_arena` for several memory plans at the cost of one replay (only the
    planned head differs), keyed by plan.  The offline plan runs the ops in the order it
    embeds (:mod:`mcunas.cost.execution_order`); where that is not the model's own, its
    arena is the replay of the reordered model."""
    from mcunas.cost.execution_order import order_for_plan, reordered

    if "offline" in memory_plans and len(model.subgraphs) == 1:
        order = order_for_plan(model)
        if order is not None:
            rest = [p for p in memory_plans if p != "offline"]
            results = predict_arenas(model, target, rest) if rest else {}
            results.update(predict_arenas(reordered(model, order), target, ("offline",)))
            return {p: results[p] for p in memory_plans}
    tgt = get_target(target)
    subgraphs = model.subgraphs
    costs = [[kernel_cost(sg, op, tgt) for op in sg.operators] for sg in subgraphs]
    _check_activation_types(model)
    arena = _Arena()
    request_bytes = tgt.scratch_request_bytes
    arena.persistent(tgt.allocator_objects_bytes, tgt.struct_align)
    variables = resource_buffers(subgraphs)
    if variables:  # MicroResourceVariables::Create, before the interpreter
        arena.persistent(tgt.resource_variables_bytes, ARENA_ALIGN)
        arena.persistent(tgt.resource_variable_bytes * variables["count"], ARENA_ALIGN)
        # print_allocations lists 2 persistent buffers (16 B requested) more than the kernels
        # request on all 5 measured microWakeWord models, origin not traced: without them the
        # prediction is 8 B under on each, with one 16 B buffer here 8 B over on each.
        arena.persistent(ARENA_ALIGN, ARENA_ALIGN)
    # StartModelAllocation
    arena.persistent(tgt.builtin_allocator_bytes, tgt.struct_align)
    arena.need(request_bytes * MAX_SCRATCH_BUFFERS_PER_OP)
    arena.persistent(tgt.subgraph_allocations_bytes * len(subgraphs), tgt.struct_align)
    for sg in subgraphs:
        arena.persistent(tgt.eval_tensor_bytes * len(sg.tensors), tgt.struct_align)
    for sg in subgraphs:
        arena.persistent(tgt.node_and_registration_bytes * len(sg.operators), tgt.struct_align)
    for sg_costs in costs:
        for cost in sg_costs:
            for nbytes, align in cost.params:
                arena.persistent(nbytes, align)
    for sg_costs in costs:
        for cost in sg_costs:
            for n in cost.init_bytes:
                arena.persistent(n, ARENA_ALIGN)
    # Prepare
    requests = 0
    scratch: list[list[tuple[int, int]]] = [[] for _ in subgraphs]
    for s, (sg, sg_costs) in enumerate(zip(subgraphs, costs)):
        for index, cost in enumerate(sg_costs):
            head = request_bytes * (requests + MAX_SCRATCH_BUFFERS_PER_OP)
            for n in cost.persistent_bytes + variables.get((s, index), []):
                arena.persistent(n, ARENA_ALIGN)
            for t in cost.temps:
                head = _temp_tensor_bytes(sg, t, tgt, head)
            arena.need(head)  # scratch requests fill the 12 free entries; the buffer grows after the op
            requests += len(cost.scratch_bytes)
            scratch[s] += [(n, index) for n in cost.scratch_bytes]
            arena.need(request_bytes * (requests + MAX_SCRATCH_BUFFERS_PER_OP))
    # FinishModelAllocation
    arena.persistent(tgt.scratch_handle_bytes * requests, tgt.struct_align)
    for sg in subgraphs:
        for t in sg.tensors:
            if t.is_variable:
                arena.persistent(t.nbytes, ARENA_ALIGN)
    buffers = [plan_buffers(sg, scratch[s]) for s, sg in enumerate(subgraphs)]
    planned = sum(len(b) for b in buffers)
    info_count = sum(len(sg.tensors) for sg in subgraphs) + requests
    head = request_bytes * (requests + MAX_SCRATCH_BUFFERS_PER_OP)
    # AllocationInfoBuilder::CreateAllocationInfo: a size_t offset per subgraph, then the AllocationInfos
    head = align_up(head, tgt.pointer_bytes) + tgt.pointer_bytes * len(subgraphs)
    head = align_up(head, tgt.struct_align) + tgt.allocation_info_bytes * info_count
    arena.need(align_up(head, ARENA_ALIGN) + PLANNER_BYTES_PER_BUFFER * planned, ARENA_ALIGN)
    commit_events = arena.events
    results = {}
    for memory_plan in memory_plans:
        offline = _offline_plan(model, memory_plan, scratch)
        plan = _plan_head(buffers, subgraphs, scratch) if offline is None else offline.head_bytes
        arena.events = list(commit_events)
        arena.need(plan)
        # Interpreter: input / output tables and tensors
        main = subgraphs[0]
        for group in (main.inputs, main.outputs):
            arena.persistent(tgt.pointer_bytes * len(group), ARENA_ALIGN)
            for t in group:
                _persistent_tensor(arena, main, t, tgt)
        arena.need(plan)
        total = arena.smallest_safe_size()
        out = {"sram_tflm_bytes": total, "tflm_head_bytes": plan, "tflm_tail_bytes": arena.tail_used(total),
               "target": tgt.name}
        if memory_plan == "offline":
            out["tflm_head_bound_bytes"] = offline.bound_bytes
        results[memory_plan] = out
    return results


def resource_buffers(subgraphs: list[Subgraph]) -> dict:
    """The resource variables of a model: ``{(subgraph, op index): [bytes]}`` for each
    ASSIGN_VARIABLE whose Prepare allocates its variable's buffer (the first assignment of
    each variable, in Prepare order: subgraph by subgraph, op by op), and one key ``"count"``:
    the number of distinct variables (``VAR_HANDLE`` shared names), which is what the pip
    interpreter passes to ``MicroResourceVariables::Create``.  Empty without VAR_HANDLE."""
    names = {op.options.get("shared_name", "") for sg in subgraphs for op in sg.operators if op.op == "VAR_HANDLE"}
    if not names:
        return {}
    out: dict = {"count": len(names)}
    allocated = set()
    for s, sg in enumerate(subgraphs):
        handle_of = {op.outputs[0]: op.options.get("shared_name", "") for op in sg.operators
                     if op.op == "VAR_HANDLE"}
        for index, op in enumerate(sg.operators):
            if op.op != "ASSIGN_VARIABLE":
                continue
            name = handle_of.get(op.inputs[0])
            if name is None:
                # the handle comes from another subgraph: TFLM allocates at invoke, from the tail
                raise UserError("ASSIGN_VARIABLE reads a resource handle made outside its subgraph: "
                                "the TFLM arena model does not cover this")
            if name not in allocated:
                allocated.add(name)
                out[(s, index)] = [sg.tensors[op.inputs[1]].nbytes]
    return out


def _offline_plan(model: TfliteModel, memory_plan: str, scratch: list[list[tuple[int, int]]]):
    """The offline plan the head follows: made here (``memory_plan="offline"``), the model's own
    (as TFLM reads it), or None (TFLM's greedy planner alone)."""
    from mcunas.cost.memory_plan import OfflinePlan, plan_subgraph

    if memory_plan not in MEMORY_PLANS:
        raise UserError(f"unknown memory plan '{memory_plan}': choose one of {', '.join(MEMORY_PLANS)}")
    if memory_plan == "stock" and model.offline_offsets is None:
        return None
    if len(model.subgraphs) > 1:
        raise UserError("offline memory plans are modelled for single-subgraph models only "
                        "(TFLM indexes the offsets per subgraph from the start of the list)")
    sg = model.subgraphs[0]
    if memory_plan == "offline":
        return plan_subgraph(sg, scratch[0])
    if len(model.offline_offsets) != len(sg.tensors):
        raise UserError(f"the model's offline memory plan has {len(model.offline_offsets)} offsets for "
                        f"{len(sg.tensors)} tensors: TFLM refuses to load it")
    buffers = plan_buffers(sg, scratch[0])
    fixed = [model.offline_offsets[t] for t in planned_tensors(sg)]
    fixed += [-1] * (len(buffers) - len(fixed))
    return OfflinePlan(model.offline_offsets, peak_bytes(buffers, fixed), 0, False)


def _plan_head(buffers: list[list[Buffer]], subgraphs: list[Subgraph] = (),
               scratch: list[list[tuple[int, int]]] = ()) -> int:
    """Planned head.  One subgraph: its buffers.  Several: TFLM plans them all in one plan, each
    called subgraph's lifetimes nested inside its calling op's scope (:func:`model_buffers`)."""
    if len(buffers) == 1:
        return peak_bytes(buffers[0])
    return peak_bytes(model_buffers(subgraphs, scratch))


CALLED_SUBGRAPHS_OPS = ("IF", "WHILE", "CALL_ONCE")  # options["subgraphs"]: the subgraphs they run


def model_buffers(subgraphs: list[Subgraph], scratch: list[list[tuple[int, int]]]) -> list[Buffer]:
    """Every subgraph's planned buffers in one list, as ``AllocationInfoBuilder`` marks them
    (``micro_allocation_info.cc``): one scope counter walks the main subgraph; an op that runs
    subgraphs (IF, WHILE, CALL_ONCE) opens a new scope per called subgraph and walks it there,
    before its own inputs' last use is marked, so a called subgraph's tensors live inside its
    caller's scope.  Buffers follow in allocation-info order: subgraph 0's tensors, subgraph 1's,
    ..., then the scratch buffers in request order; a tensor no walk reaches is not planned."""
    first: dict[tuple[int, int], int] = {}
    last: dict[tuple[int, int], int] = {}
    scratch_life: dict[tuple[int, int], tuple[int, int]] = {}
    scope = 0

    def created(key):
        first[key] = last[key] = scope

    def walk(s: int) -> None:
        nonlocal scope
        sg = subgraphs[s]
        for t in (*sg.inputs, *sg.outputs):
            created((s, t))
        for index, op in enumerate(sg.operators):
            scope += 1
            for t in op.outputs:
                created((s, t))
            start = scope
            if op.op in CALLED_SUBGRAPHS_OPS:
                for called in op.options.get("subgraphs", []):
                    if 0 <= called < len(subgraphs):
                        scope += 1
                        walk(called)
            for t in (*[i for i in op.inputs if i >= 0], *op.outputs):
                last[(s, t)] = scope
            scratch_life[(s, index)] = (start, scope)
        for t in sg.outputs:
            last[(s, t)] = scope

    walk(0)
    buffers = [Buffer(align_up(t.nbytes), first[(s, i)], last[(s, i)])
               for s, sg in enumerate(subgraphs) for i, t in enumerate(sg.tensors)
               if (s, i) in first and not t.has_data and not t.is_variable and t.nbytes]
    for s, requests in enumerate(scratch):
        for nbytes, op in requests:
            lo, hi = scratch_life.get((s, op), (0, scope))
            buffers.append(Buffer(align_up(nbytes), lo, hi))
    return buffers


# int32: SHAPE outputs, MEAN/ARG_MAX side data; float32: TFLM's float reference kernels allocate
# the same structs (checked on the float32 files of results/public_tflite_fidelity.csv); bool:
# comparison outputs; resource: VAR_HANDLE outputs.  uint8 only through QUANTIZE/DEQUANTIZE.
ACTIVATION_TYPES = ("int8", "int16", "int32", "float32", "bool", "resource")


def check_supported(model: TfliteModel) -> None:
    """UserError naming the first op the arena model does not know, or an op inside the model
    with an activation type outside :data:`ACTIVATION_TYPES` (only QUANTIZE/DEQUANTIZE may
    touch uint8)."""
    for sg in model.subgraphs:
        for op in sg.operators:
            kernel_cost(sg, op, get_target("x86_64"))  # UserError for an op it does not know
    _check_activation_types(model)


def _check_activation_types(model: TfliteModel) -> None:
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.op in ("QUANTIZE", "DEQUANTIZE"):
                continue
            for t in (*op.inputs, *op.outputs):
                tensor = sg.tensors[t] if t >= 0 else None
                if tensor is not None and not tensor.has_data and tensor.dtype not in ACTIVATION_TYPES:
                    raise UserError(f"{op.op} has a {tensor.dtype} activation '{tensor.name}': the TFLM arena "
                                    "model covers int8, int16 and float32 models (uint8 only at the input and "
                                    "output, through QUANTIZE/DEQUANTIZE)")
