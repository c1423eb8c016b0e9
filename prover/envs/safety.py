"""Tactic safety: model-proposed tactics are checked before they reach Lean.

A language model can propose text that "proves" a goal without proving it (``sorry``),
trusts unchecked code (``native_decide``), or escapes the tactic block altogether
(``#eval``, a new ``axiom``, an ``elab`` that runs arbitrary meta code). ``TacticFilter``
refuses such tactics by looking at their *tokens*, so a hypothesis called
``sorry_lemma`` or a lemma ``Nat.admits_foo`` passes while ``sorry`` does not.
``GuardedEnv`` wraps any proof environment: a refused tactic never reaches Lean and is
answered with a ``LeanError`` that says why; ``check_proof`` refuses a proof that holds
a refused tactic before asking the inner environment to re-check it.

    env = GuardedEnv(inner_env, TacticFilter(allow_native_decide=False))
    env.run_tactic(state, "sorry")  # LeanError("refused: `sorry` closes goals without proof")

What is refused, and why (each rule is one entry of a table below):

- proof holes: ``sorry``, ``admit``, ``sorryAx`` (also ``sorryAx.{0}``), ``stop``
  (= ``repeat sorry``), ``apply?`` / ``rw?`` (they close the goal with ``sorry`` after
  printing suggestions);
- trusting the compiler instead of the kernel: ``native_decide``, ``decide +native``,
  ``bv_decide``, ``bv_decide?``, ``bv_check``, ``Lean.ofReduceBool``,
  ``Lean.ofReduceNat``, ``Lean.trustCompiler`` (all allowed with ``allow_native_decide``);
  the re-check of a found proof also rejects any axiom beyond the standard three;
- leaving tactic mode: any ``#`` command (``#eval``, ``#exit``, ``#print``, ...), and
  every command keyword (``theorem``, ``def``, ``axiom``, ``instance``, ``attribute``,
  ``macro``, ``syntax``, ``elab``, ``notation``, ``namespace``, ``end``, ``import``, ...):
  in a whole-file re-check a tactic that starts a command would add declarations;
- metaprogramming: ``run_tac``, ``run_cmd``, ``run_elab``, ``run_meta``, ``by_elab``,
  ``elab_rules``, ``macro_rules``, identifiers under ``Lean.Elab``, ``Lean.Meta``,
  ``Lean.Parser``, ``Lean.Compiler``, ``Lean.Environment``, ``Lean.Kernel``, ...
  (and under ``Elab.``/``Meta.`` after an ``open Lean``), and ``open ... Lean ... in``
  (every namespace opened is checked);
- side effects and unchecked code: ``IO``, ``dbg_trace``, ``unsafe`` (but not a rule's
  phase in ``aesop (add unsafe 50% apply foo)``), ``unsafeCast``,
  ``unsafeBaseIO``, ``implemented_by``, ``extern``, ``@[`` attributes;
- ``set_option`` of anything but a few harmless options (``maxRecDepth``, a *positive*
  ``maxHeartbeats``/``synthInstance.maxHeartbeats``, ``synthInstance.maxSize``,
  ``pp.*``, ``trace.*``): ``maxHeartbeats 0`` removes the deterministic time limit,
  ``debug.skipKernelTC`` skips the kernel, and unknown options are not worth the risk.

Names are normalised first: ``«sorryAx»`` is ``sorryAx``, a ``_root_.`` prefix is dropped,
a constant refused anywhere (``sorryAx``, ``ofReduceBool``, ...) is refused under any
namespace, and ``0sorry`` is the number ``0`` followed by ``sorry``.

Allowed on purpose: ``exact?`` (it closes a goal only with a real proof term, else it
fails), ``decide`` (kernel-checked), ``open Real in ...`` (namespaces other than
``Lean``), and identifiers that merely contain a refused word (``h_sorry``,
``admit_lemma``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from search import LeanError, Outcome, ProofChecker, ProofEnv, TacticState, Theorem

# A Lean identifier (with dots, subscripts, primes, `!`/`?` suffixes), a `#command`,
# `@[`, or a number: one token each. Everything else is skipped.
# A number is digits only, so `0sorry` is the number 0 and then `sorry`.
TOKEN = re.compile(r"#[A-Za-z_]\w*|@\[|[^\W\d][\w'!?.]*|\d+", re.UNICODE)
# «sorryAx» names the same constant as sorryAx: quotes are dropped before tokenising.
QUOTED_NAME = re.compile(r"«([^»]*)»")

HOLES = {
    "sorry": "`sorry` closes goals without proof",
    "admit": "`admit` closes goals without proof",
    "sorryAx": "`sorryAx` is the axiom behind `sorry`",
    "stop": "`stop` discards the rest of the proof with `sorry`",
    "apply?": "`apply?` closes the goal with `sorry` after printing suggestions",
    "rw?": "`rw?` may close the goal with `sorry` after printing suggestions",
}

NATIVE = {
    "native_decide": "`native_decide` trusts compiled code instead of the kernel",
    "native": "`decide +native` trusts compiled code instead of the kernel",
    "bv_decide": "`bv_decide` trusts compiled code (`Lean.ofReduceBool`) instead of the kernel",
    "bv_decide?": "`bv_decide?` trusts compiled code (`Lean.ofReduceBool`) instead of the kernel",
    "bv_check": "`bv_check` trusts compiled code (`Lean.ofReduceBool`) instead of the kernel",
    "ofReduceBool": "`ofReduceBool` trusts compiled code instead of the kernel",
    "ofReduceNat": "`ofReduceNat` trusts compiled code instead of the kernel",
    "trustCompiler": "`trustCompiler` trusts compiled code instead of the kernel",
}
# Constants refused under any namespace (`Lean.ofReduceBool`, `_root_.sorryAx`): the last
# component of a dotted name is looked up in these tables too.
BY_LAST_COMPONENT = ("sorryAx", "ofReduceBool", "ofReduceNat", "trustCompiler")

META = {
    "run_tac": "`run_tac` runs arbitrary meta code",
    "run_cmd": "`run_cmd` runs arbitrary meta code",
    "run_elab": "`run_elab` runs arbitrary meta code",
    "run_meta": "`run_meta` runs arbitrary meta code",
    "by_elab": "`by_elab` runs arbitrary meta code",
    "elab": "`elab` defines new syntax that runs meta code",
    "elab_rules": "`elab_rules` defines elaborators that run meta code",
    "macro": "`macro` defines new syntax",
    "macro_rules": "`macro_rules` redefines syntax",
    "syntax": "`syntax` defines new syntax",
    "declare_syntax_cat": "`declare_syntax_cat` defines new syntax",
    "notation": "`notation` defines new syntax",
    "infix": "`infix` defines new syntax",
    "infixl": "`infixl` defines new syntax",
    "infixr": "`infixr` defines new syntax",
    "prefix": "`prefix` defines new syntax",
    "postfix": "`postfix` defines new syntax",
    "unsafe": "`unsafe` code is not checked by the kernel",
    "unsafeCast": "`unsafeCast` breaks type safety",
    "unsafeBaseIO": "`unsafeBaseIO` runs side effects",
    "unsafeIO": "`unsafeIO` runs side effects",
    "unsafeEIO": "`unsafeEIO` runs side effects",
    "dbg_trace": "`dbg_trace` runs side effects",
    "dbgTrace": "`dbgTrace` runs side effects",
    "implemented_by": "`implemented_by` swaps in unchecked code",
    "extern": "`extern` swaps in unchecked code",
    "IO": "`IO` runs side effects",
    "EIO": "`EIO` runs side effects",
    "BaseIO": "`BaseIO` runs side effects",
    "@[": "attributes change how declarations are used",
}

# Keywords that start a command: in a whole-file re-check, a tactic that contains one
# would end the proof and add declarations of its own (an `axiom`, a `theorem`, ...).
COMMANDS = {
    "axiom", "theorem", "lemma", "def", "abbrev", "instance", "example", "opaque",
    "structure", "class", "inductive", "coinductive", "mutual", "attribute", "namespace",
    "section", "end", "variable", "universe", "import", "initialize", "builtin_initialize",
    "deriving", "export", "partial", "private", "protected", "noncomputable", "omit",
    "include", "add_decl_doc", "library_note", "assert_not_exists", "irreducible_def",
}

# Identifier prefixes that reach into the elaborator, the kernel or the environment.
META_PREFIXES = (
    "Lean.Elab", "Lean.Meta", "Lean.Parser", "Lean.Compiler", "Lean.IR", "Lean.Kernel",
    "Lean.Environment", "Lean.addDecl", "Lean.Syntax", "Lean.Core", "Lean.MonadEnv",
    "Lean.Language", "Lean.Server", "Lean.evalConst", "Lean.Expr",
    # after `open Lean` these are reachable without the `Lean.` prefix
    "Elab.", "Meta.", "Parser.", "Compiler.", "Kernel.", "IR.",
    "IO.", "EIO.", "BaseIO.", "System.",
)

# Options that may be set in a tactic (`set_option NAME VALUE in tac`): exact names,
# and prefixes ending in ".". Anything else is refused.
SAFE_OPTIONS = ("maxRecDepth", "maxHeartbeats", "synthInstance.maxHeartbeats", "synthInstance.maxSize")
SAFE_OPTION_PREFIXES = ("pp.", "trace.")
# Options whose value 0 means "no limit": allowed only with a positive value.
LIMIT_OPTIONS = ("maxHeartbeats", "synthInstance.maxHeartbeats")


def tokens(tactic: str) -> list[str]:
    """The tactic's tokens: identifiers (dotted names kept whole), `#commands`, numbers.

    A ``_root_.`` prefix names the same constant, and a trailing ``.`` belongs to what
    follows (``sorryAx.{0}``), so both are dropped.
    """
    found = []
    for token in TOKEN.findall(QUOTED_NAME.sub(r"\1", tactic)):
        while token.startswith("_root_."):
            token = token[len("_root_."):]
        token = token.rstrip(".")
        if token:
            found.append(token)
    return found


def _in_aesop_rules(before: list[str]) -> bool:
    """Whether the tokens before a position are inside an `aesop (add ...)` clause."""
    if "aesop" not in before:
        return False
    last_aesop = len(before) - 1 - before[::-1].index("aesop")
    return "add" in before[last_aesop:]


@dataclass(frozen=True)
class TacticFilter:
    """Decides whether a tactic may be sent to Lean; see the module docstring."""

    allow_native_decide: bool = False

    def refusal(self, tactic: str) -> str | None:
        """None when ``tactic`` may run, else a reason: ``"refused: `sorry` closes ..."``."""
        found = tokens(tactic)
        for i, token in enumerate(found):
            if token == "unsafe" and _in_aesop_rules(found[:i]):
                continue  # `aesop (add unsafe 50% apply foo)`: a rule's phase, not unsafe code
            if token == "open":
                reason = self._open_refusal(found[i + 1 :])
                if reason is not None:
                    return f"refused: {reason}"
                continue
            reason = self._token_refusal(token, found[i + 1 : i + 3])
            if reason is not None:
                return f"refused: {reason}"
        return None

    def _token_refusal(self, token: str, following: list[str]) -> str | None:
        last = token.rsplit(".", 1)[-1]
        if last in BY_LAST_COMPONENT:
            token = last
        if token in HOLES:
            return HOLES[token]
        if token in NATIVE:
            return None if self.allow_native_decide else NATIVE[token]
        if token in META:
            return META[token]
        if token.startswith("#"):
            return f"`{token}` is a command, not a tactic"
        if token in COMMANDS:
            return f"`{token}` starts a new command, not a tactic"
        if token.startswith(META_PREFIXES):
            return f"`{token}` reaches into Lean's elaborator, kernel or IO"
        if token == "set_option":
            return self._option_refusal(following)
        return None

    @staticmethod
    def _open_refusal(following: list[str]) -> str | None:
        """`open A B Lean in ...`: every namespace named before `in` (or the end) is checked."""
        for name in following:
            if name == "in":
                break
            if name == "Lean" or name.startswith("Lean."):
                return f"`open {name}` gives access to metaprogramming"
        return None

    @staticmethod
    def _option_refusal(following: list[str]) -> str | None:
        if not following:
            return "`set_option` without an option"
        option = following[0]
        value = following[1] if len(following) > 1 else ""
        if option in LIMIT_OPTIONS:
            if not value.isdigit() or int(value) == 0:
                return f"`set_option {option} {value}` lifts a resource limit"
            return None
        if option in SAFE_OPTIONS or option.startswith(SAFE_OPTION_PREFIXES):
            return None
        return f"`set_option {option}` may weaken checking"


class GuardedEnv:
    """A proof environment whose tactics pass a ``TacticFilter`` before reaching Lean.

    ``start``/``close`` are forwarded unchanged. ``run_tactic`` answers a refused tactic
    with a ``LeanError`` (the search records it as a failed edge and goes on).
    ``check_proof`` refuses a proof that holds a refused tactic, then defers to the inner
    environment's re-check; an inner environment without one gets the filter alone.
    """

    def __init__(self, inner: ProofEnv, tactic_filter: TacticFilter | None = None):
        self.inner = inner
        self.filter = tactic_filter or TacticFilter()

    def start(self, theorem: Theorem) -> TacticState:
        return self.inner.start(theorem)

    def run_tactic(self, state: TacticState, tactic: str) -> Outcome:
        refusal = self.filter.refusal(tactic)
        if refusal is not None:
            return LeanError(refusal, refused=True)
        return self.inner.run_tactic(state, tactic)

    def check_proof(self, theorem: Theorem, tactics: Sequence[str]) -> str | None:
        """None when the proof passes the filter and the inner re-check, else why not."""
        for step, tactic in enumerate(tactics, 1):
            refusal = self.filter.refusal(tactic)
            if refusal is not None:
                return f"step {step} (`{tactic}`) is {refusal}"
        if isinstance(self.inner, ProofChecker):
            return self.inner.check_proof(theorem, tactics)
        return None

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str):
        # Backend-specific extras (e.g. a session's num_restarts) stay reachable.
        if name == "inner":  # not yet set (e.g. during copying): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)
