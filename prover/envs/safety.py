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
  printing suggestions), and tactics that close the goal with ``sorry`` internally when they
  find nothing better: ``plausible``/``slim_check`` (admit the goal when they find no
  counterexample), ``sagredo``;
- reaching the network: ``polyrith`` (sends the goal to a Sage web service), the LLM and
  search-engine tactics (``llmstep``, ``llmlean``, ``sagredo``, ``leansearch``, ``moogle``,
  ``loogle``, ``hammer``, ``suggest_premises``, ...);
- resource exhaustion: ``sleep``, and the limit options raised past a bound (below);
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
  phase inside the parentheses of ``aesop (add unsafe 50% apply foo)``), ``unsafeCast``,
  ``unsafeBaseIO``, ``implemented_by``, ``extern``, ``@[`` attributes;
- ``set_option`` of anything but a few harmless options (``pp.*``, ``trace.*``,
  ``linter.*``, and ``maxRecDepth``, ``maxHeartbeats``, ``synthInstance.maxHeartbeats``,
  ``synthInstance.maxSize`` set to a plain number from 1 up to a bound, ``OPTION_BOUNDS``):
  ``maxHeartbeats 0`` removes the deterministic time limit, a huge value does in effect,
  ``debug.skipKernelTC`` skips the kernel, and unknown options are not worth the risk;
- a newline followed by a new command (``simproc``, ``notation``, ``attribute``,
  ``unif_hint``, ``add_aesop_rules``, ``set_option``/``open`` without ``in``, ...): in the
  whole-file re-check it would end the proof and run as a command (a simproc's body runs
  meta code). ``GuardedEnv.check_proof`` applies the same rule to the proof's lines.

Names are normalised first: ``«sorryAx»`` is ``sorryAx``, a ``_root_.`` prefix is dropped,
a constant refused anywhere (``sorryAx``, ``ofReduceBool``, ...) is refused under any
namespace, and ``0sorry`` is the number ``0`` followed by ``sorry``.

Allowed on purpose: ``exact?`` (it closes a goal only with a real proof term, else it
fails), ``decide`` (kernel-checked), ``open Real in ...`` (namespaces other than
``Lean``, so ``open ProbabilityTheory in simp [Kernel.comp_apply]``: Mathlib's ``Kernel``
is not Lean's), and identifiers that merely contain a refused word (``h_sorry``,
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
    "plausible": "`plausible` closes the goal with `sorry` when it finds no counterexample",
    "slim_check": "`slim_check` closes the goal with `sorry` when it finds no counterexample",
    "sagredo": "`sagredo` asks a remote language model and closes the goal with `sorry`",
    "sagredo!": "`sagredo!` asks a remote language model and closes the goal with `sorry`",
}

# Tactics that reach the network (Lean itself runs without one under the sandbox, but the
# filter says why up front).
NETWORK = {
    name: f"`{name}` reaches the network"
    for name in (
        "polyrith",
        "llmstep",
        "llmlean",
        "llmqed",
        "llm",
        "gpt",
        "leansearch",
        "moogle",
        "loogle",
        "leanfinder",
        "hammer",
        "suggest_premises",
        "select_premises",
        "premise_search",
    )
}

# Resource exhaustion.
RESOURCES = {"sleep": "`sleep` stalls Lean"}

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
    "axiom",
    "theorem",
    "lemma",
    "def",
    "abbrev",
    "instance",
    "example",
    "opaque",
    "structure",
    "class",
    "inductive",
    "coinductive",
    "mutual",
    "attribute",
    "namespace",
    "section",
    "end",
    "variable",
    "universe",
    "import",
    "initialize",
    "builtin_initialize",
    "deriving",
    "export",
    "partial",
    "private",
    "protected",
    "noncomputable",
    "omit",
    "include",
    "add_decl_doc",
    "library_note",
    "assert_not_exists",
    "irreducible_def",
    # registering rules, simprocs, hints and options: each runs or installs code
    "simproc",
    "dsimproc",
    "simproc_decl",
    "dsimproc_decl",
    "unif_hint",
    "add_aesop_rules",
    "erase_aesop_rules",
    "declare_aesop_rule_sets",
    "register_simp_attr",
    "register_option",
    "register_builtin_option",
    "register_label_attr",
    "declare_simp_like_tactic",
    "notation3",
    "binder_predicate",
    "alias",
    "nonrec",
    "seal",
    "unseal",
    "grind_pattern",
    "compile_inductive",
    "initialize_simps_projections",
    "suppress_compilation",
    "unsuppress_compilation",
    "proof_wanted",
    "mk_iff_of_inductive_prop",
    "recall",
}
# Words that start a command only at the start of a line (elsewhere they are tactic syntax:
# `open Real in simp`, `set_option pp.all true in simp`, `open scoped Real in simp`).
LINE_COMMANDS = ("open", "set_option", "local", "scoped")

# Identifier prefixes that reach into the elaborator, the kernel or the environment.
META_PREFIXES = (
    "Lean.Elab",
    "Lean.Meta",
    "Lean.Parser",
    "Lean.Compiler",
    "Lean.IR",
    "Lean.Kernel",
    "Lean.Environment",
    "Lean.addDecl",
    "Lean.Syntax",
    "Lean.Core",
    "Lean.MonadEnv",
    "Lean.Language",
    "Lean.Server",
    "Lean.evalConst",
    "Lean.Expr",
    # after `open Lean` these are reachable without the `Lean.` prefix (not `Kernel.`:
    # Mathlib's ProbabilityTheory.Kernel is ordinary mathematics)
    "Elab.",
    "Meta.",
    "Parser.",
    "Compiler.",
    "IR.",
    "IO.",
    "EIO.",
    "BaseIO.",
    "System.",
)

# Options that may be set in a tactic (`set_option NAME VALUE in tac`): the bounded limits
# below, and prefixes ending in ".". Anything else is refused.
SAFE_OPTION_PREFIXES = ("pp.", "trace.", "linter.")
# The limit options: a plain number from 1 up to this bound (20x Lean's default, and above
# anything Mathlib sets); 0 means "no limit" and a huge value does in effect.
OPTION_BOUNDS = {
    "maxHeartbeats": 4_000_000,
    "synthInstance.maxHeartbeats": 400_000,
    "maxRecDepth": 100_000,
    "synthInstance.maxSize": 10_000,
}
SET_OPTION = re.compile(r"\bset_option\s+(?P<option>[^\s]+)(?:\s+(?P<value>[^\s()\[\]]+))?")
# `aesop (add ...)`: the clauses of an aesop call, in whose parentheses `unsafe` is a phase.
AESOP = re.compile(r"(?<![\w.])aesop\??(?![\w'!?])")


def tokens(tactic: str) -> list[str]:
    """The tactic's tokens: identifiers (dotted names kept whole), `#commands`, numbers.

    A ``_root_.`` prefix names the same constant, and a trailing ``.`` belongs to what
    follows (``sorryAx.{0}``), so both are dropped.
    """
    return [token for token, _ in _positioned_tokens(QUOTED_NAME.sub(r"\1", tactic))]


def _positioned_tokens(text: str) -> list[tuple[str, int]]:
    found = []
    for match in TOKEN.finditer(text):
        token = match.group()
        while token.startswith("_root_."):
            token = token[len("_root_.") :]
        token = token.rstrip(".")
        if token:
            found.append((token, match.start()))
    return found


def _aesop_rule_spans(text: str) -> list[tuple[int, int]]:
    """The character spans of the ``(add ...)`` clauses that directly follow ``aesop``."""
    spans = []
    for match in AESOP.finditer(text):
        i = match.end()
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text) or text[i] != "(":
                break
            depth, j = 0, i
            while j < len(text):
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            if text[i + 1 : j].lstrip().startswith("add"):
                spans.append((i, j))
            i = j + 1
    return spans


def _line_command(text: str) -> str | None:
    """The command keyword that starts a line of ``text``, if one does: a command keyword,
    an attribute, or ``open``/``set_option``/``local``/``scoped`` not followed by ``in``."""
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("@["):
            return "@["
        words = tokens(stripped)
        if not words or not stripped.startswith(words[0]):  # blank, or starts with a symbol (`·`, `_`, `<;>`)
            continue
        first = words[0]
        if first in COMMANDS or first in META and first != "unsafe":
            return first
        if first in LINE_COMMANDS and (first in ("local", "scoped") or "in" not in words):
            return first
    return None


@dataclass(frozen=True)
class TacticFilter:
    """Decides whether a tactic may be sent to Lean; see the module docstring."""

    allow_native_decide: bool = False

    def refusal(self, tactic: str) -> str | None:
        """None when ``tactic`` may run, else a reason: ``"refused: `sorry` closes ..."``."""
        text = QUOTED_NAME.sub(r"\1", tactic)
        command = _line_command(text)
        if command is not None:
            return f"refused: a line starting with `{command}` would be a new command, not part of the tactic"
        positioned = _positioned_tokens(text)
        found = [token for token, _ in positioned]
        aesop_rules = _aesop_rule_spans(text)
        for i, (token, at) in enumerate(positioned):
            if token == "unsafe" and any(start < at < end for start, end in aesop_rules):
                continue  # `aesop (add unsafe 50% apply foo)`: a rule's phase, not unsafe code
            if token == "open":
                reason = self._open_refusal(found[i + 1 :])
                if reason is not None:
                    return f"refused: {reason}"
                continue
            if token == "set_option":
                reason = self._option_refusal(SET_OPTION.match(text, at))
            else:
                reason = self._token_refusal(token)
            if reason is not None:
                return f"refused: {reason}"
        return None

    def _token_refusal(self, token: str) -> str | None:
        last = token.rsplit(".", 1)[-1]
        if last in BY_LAST_COMPONENT:
            token = last
        if token in HOLES:
            return HOLES[token]
        if token in NATIVE:
            return None if self.allow_native_decide else NATIVE[token]
        if token in META:
            return META[token]
        if token in NETWORK:
            return NETWORK[token]
        if token in RESOURCES:
            return RESOURCES[token]
        if token.startswith("#"):
            return f"`{token}` is a command, not a tactic"
        if token in COMMANDS:
            return f"`{token}` starts a new command, not a tactic"
        if token.startswith(META_PREFIXES):
            return f"`{token}` reaches into Lean's elaborator, kernel or IO"
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
    def _option_refusal(match: re.Match | None) -> str | None:
        if match is None:
            return "`set_option` without an option"
        option, value = match.group("option"), match.group("value") or ""
        if option in OPTION_BOUNDS:
            bound = OPTION_BOUNDS[option]
            if not value.isdigit() or not 1 <= int(value) <= bound:
                return f"`set_option {option} {value}` lifts a resource limit (allowed: 1 to {bound})"
            return None
        if option.startswith(SAFE_OPTION_PREFIXES):
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
        # The re-check compiles the tactics one per line: no line of the whole may start a command.
        command = _line_command("by\n" + "\n".join(tactics))
        if command is not None:
            return f"the proof is refused: a line starting with `{command}` would be a new command"
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
