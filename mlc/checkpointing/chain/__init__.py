"""Keep-or-recompute for a chain of stages: model, simulator, exact solvers, baselines.

This package is the decision core of the `mlc-checkpoint` pass for the (common) case where the
training step is a chain. It has no IR dependency: a `Chain` is a list of numbers.

`model`: the chain (Rotor's model); `simulator`: schedules and the execution model (the ground
truth); `baselines`: keep-all, recompute-all, sqrt; `least_memory`: the least memory of any schedule
and the keep-all peak; `dp`: the exact dynamic programme under a memory budget (its derivation is
that module's docstring); `revolve`: Revolve's closed form; `milp`: an independent phase-indexed
MILP; `explanations`: one line per stage. The names below are the package's interface.
"""

from .baselines import keep_all, recompute_all, sqrt_schedule
from .dp import pareto_front, solve_optimal, solve_table
from .explanations import explain
from .least_memory import keep_all_peak, min_feasible_budget, min_memory_schedule
from .milp import solve_chain_milp
from .model import Chain, homogeneous_chain
from .revolve import revolve_extra_forwards, revolve_forward_count
from .simulator import Op, OpKind, Schedule, ScheduleError, SimResult, simulate

__all__ = [
    "Chain",
    "Op",
    "OpKind",
    "Schedule",
    "ScheduleError",
    "SimResult",
    "explain",
    "homogeneous_chain",
    "keep_all",
    "keep_all_peak",
    "min_feasible_budget",
    "min_memory_schedule",
    "pareto_front",
    "recompute_all",
    "revolve_extra_forwards",
    "revolve_forward_count",
    "simulate",
    "solve_chain_milp",
    "solve_optimal",
    "solve_table",
    "sqrt_schedule",
]
