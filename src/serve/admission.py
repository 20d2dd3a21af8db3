"""Whether one more session fits: a session count cap, and a CPU budget.

A session costs about `serve.session_cpu_cores` cores (measured by the benchmark); the
sessions together may use `serve.cpu_budget_fraction` (85 %) of the machine's cores.
A refusal carries its reason and a Retry-After for the HTTP 503.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    kind: str  # "max_sessions" | "cpu"
    reason: str
    retry_after_s: int


class Admission:
    def __init__(self, max_sessions: int, session_cpu_cores: float, *, cores: int | None = None,
                 budget_fraction: float = 0.85, retry_after_s: int = 10) -> None:
        self.max_sessions = max_sessions
        self.session_cpu_cores = session_cpu_cores
        self.cores = cores or os.cpu_count() or 1
        self.budget_fraction = budget_fraction
        self.retry_after_s = retry_after_s
        self.refused: dict[str, int] = {}

    @property
    def cpu_capacity(self) -> int:
        """Sessions the CPU budget allows."""
        return int(self.budget_fraction * self.cores / self.session_cpu_cores + 1e-9)

    def check(self, sessions: int) -> Refusal | None:
        """None if a session can be added to `sessions` running (or being created) ones."""
        if sessions + 1 > self.max_sessions:
            return Refusal("max_sessions", f"the server runs its maximum of {self.max_sessions} sessions "
                           "(--max-sessions); end one or try again later", self.retry_after_s)
        need = (sessions + 1) * self.session_cpu_cores
        budget = self.budget_fraction * self.cores
        if need > budget + 1e-9:
            return Refusal("cpu", f"{sessions + 1} sessions x {self.session_cpu_cores:g} cores would pass "
                           f"{self.budget_fraction:.0%} of this machine's {self.cores} cores; try again later "
                           "or add a machine", self.retry_after_s)
        return None

    def count(self, refusal: Refusal) -> None:
        self.refused[refusal.kind] = self.refused.get(refusal.kind, 0) + 1
