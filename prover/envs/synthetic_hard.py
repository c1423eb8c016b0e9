"""The hard synthetic rule (``--env synthetic --rule hard``): a benchmark where neither a
model-free policy nor a critic that spots one string can cheat.

A state is an arithmetic goal about variables whose values the hypotheses fix::

    x y : ℤ
    h₀ : x = 3
    h₁ : y = 5
    ⊢ (x + 2) * y ^ 2 - x ≤ 72

- **The working tactic depends on the goal's structure**: it is ``HARD_RULE[(outer
  operator, relation)]``, where the outer operator is the root of the left-hand side's
  expression tree (found through precedence and parentheses: ``x + y * z`` is a sum,
  ``(x + y) * z`` a product), and subtraction over ℕ (truncated) always needs ``omega``.
  The tokens of a goal do not give it away: every goal holds most operators.
- **Long proofs**: the working tactic turns a goal with n operators into a fresh goal
  with n - 1 (and closes a goal with one); a theorem starts with between
  ``ceil(depth / 2)`` and ``depth`` operators.
- **Dead ends look alive**: a true goal is provable, a false one is not, and the two are
  printed alike (no ``⊢ False``, no stray hypothesis): only evaluating the goal under its
  hypotheses tells them apart. On a false goal the tactic that looks right still
  "progresses" to a smaller false goal, and fails at the last operator.
- **High-prior branches into dead ends**: ``TEMPTING`` tactics (those a model-free policy
  ranks first: ``norm_num``, ``simp``, ``linarith``), where they are not the working one,
  usually turn a goal into a false goal of the same size; any other wrong tactic fails,
  or now and then does the same.
- **More tactics than a node's budget**: ``HARD_TACTICS`` has 12; a search tries 8 per
  state by default, and four of them are beyond the fixed policy's first eight.

Everything is a pure function of (seed, theorem, state, tactic).
"""

from __future__ import annotations

import random

HARD_TACTICS = (
    "norm_num",
    "simp",
    "linarith",
    "omega",
    "ring",
    "nlinarith",
    "positivity",
    "decide",
    "field_simp",
    "aesop",
    "gcongr",
    "push_cast",
)
TEMPTING = ("norm_num", "simp", "linarith")
OPERATORS = ("+", "-", "*", "^")
RELATIONS = ("=", "≤", "<", "≠")
NUMBER_TYPES = ("ℕ", "ℤ", "ℝ")
HARD_RULE: dict[tuple[str, str], str] = {
    ("+", "="): "omega",
    ("+", "≤"): "linarith",
    ("+", "<"): "gcongr",
    ("+", "≠"): "decide",
    ("-", "="): "ring",
    ("-", "≤"): "nlinarith",
    ("-", "<"): "linarith",
    ("-", "≠"): "push_cast",
    ("*", "="): "norm_num",
    ("*", "≤"): "positivity",
    ("*", "<"): "nlinarith",
    ("*", "≠"): "field_simp",
    ("^", "="): "simp",
    ("^", "≤"): "nlinarith",
    ("^", "<"): "positivity",
    ("^", "≠"): "aesop",
}
TEMPTING_TRAP_RATE = 0.7  # a tempting wrong tactic leads to a false goal this often
OTHER_TRAP_RATE = 0.15  # any other wrong tactic, this often (else it fails)
_VARIABLES = "abcmnxyz"
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "^": 3}


def working_tactic(pp: str) -> str:
    """The tactic that makes progress on a hard-rule goal (true or false alike)."""
    number_type, operator, relation = hard_features(pp)
    if number_type == "ℕ" and operator == "-":
        return "omega"
    return HARD_RULE[(operator, relation)]


def hard_features(pp: str) -> tuple[str, str, str]:
    """(number type, outer operator of the goal's left side, relation) of a hard-rule goal."""
    number_type = pp.split("\n", 1)[0].rsplit(" : ", 1)[1]
    goal = pp[pp.rindex("⊢") + 2 :]
    left, relation, _ = goal.rsplit(" ", 2)
    return number_type, outer_operator(left), relation


def outer_operator(expression: str) -> str:
    """The root of an expression printed with spaced binary operators and minimal
    parentheses: the rightmost operator of lowest precedence outside parentheses."""
    depth = 0
    best, best_rank = "", 99
    for i, char in enumerate(expression):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and char in _PRECEDENCE and expression[i - 1 : i] == " ":
            rank = _PRECEDENCE[char]
            # Left-associative + - *: the rightmost of the lowest rank; ^ is right-associative.
            if rank < best_rank or (rank == best_rank and char != "^"):
                best, best_rank = char, rank
    return best


def is_true(pp: str) -> bool:
    """Whether a hard-rule goal holds under its hypotheses (what a critic would have to see)."""
    lines = pp.split("\n")
    number_type = lines[0].rsplit(" : ", 1)[1]
    values = {}
    for line in lines[1:-1]:
        name, value = line.split(" : ", 1)[1].split(" = ")
        values[name] = int(value)
    left, relation, right = lines[-1][2:].rsplit(" ", 2)
    value = _evaluate(left, values, number_type == "ℕ")
    return _holds(value, relation, int(right))


def _holds(value: int, relation: str, constant: int) -> bool:
    return {"=": value == constant, "≤": value <= constant, "<": value < constant, "≠": value != constant}[relation]


def _evaluate(expression: str, values: dict[str, int], natural: bool) -> int:
    expression = expression.strip()
    operator = outer_operator(expression)
    if not operator:
        if expression.startswith("("):
            return _evaluate(expression[1:-1], values, natural)
        return values[expression] if expression in values else int(expression)
    # Split at that operator's position (the same scan as outer_operator).
    depth, cut = 0, -1
    for i, char in enumerate(expression):
        depth += char == "("
        depth -= char == ")"
        if depth == 0 and char == operator and expression[i - 1 : i] == " ":
            cut = i
            if operator == "^":
                break  # right-associative: the leftmost
    left = _evaluate(expression[:cut], values, natural)
    right = _evaluate(expression[cut + 1 :], values, natural)
    if operator == "+":
        return left + right
    if operator == "-":
        return max(0, left - right) if natural else left - right
    if operator == "*":
        return left * right
    return left**right


def hard_goal(rng: random.Random, num_operators: int, true: bool) -> str:
    """A goal with ``num_operators`` operators that holds (``true``) or not under its hypotheses."""
    number_type = rng.choice(NUMBER_TYPES)
    names = sorted(rng.sample(_VARIABLES, rng.randint(1, 3)))
    values = {name: rng.randint(0, 6) for name in names}
    lines = [f"{' '.join(names)} : {number_type}"]
    lines += [f"h{'₀₁₂'[i]} : {name} = {values[name]}" for i, name in enumerate(names)]
    for _ in range(100):  # numbers a person could check: powers of products grow fast
        expression, _ = _expression(rng, num_operators, names)
        value = _evaluate(expression, values, number_type == "ℕ")
        if abs(value) < 10_000:
            break
    while True:
        relation = rng.choice(RELATIONS)
        constant = _constant(rng, value, relation, true)
        if constant >= 0 or number_type != "ℕ":
            break
    lines.append(f"⊢ {expression} {relation} {constant}")
    return "\n".join(lines)


def _constant(rng: random.Random, value: int, relation: str, true: bool) -> int:
    offset = rng.randint(1, 5)
    if relation == "=":
        return value if true else value + rng.choice((-offset, offset))
    if relation == "≠":
        return value + rng.choice((-offset, offset)) if true else value
    if relation == "≤":
        return value + rng.randint(0, 5) if true else value - offset
    return value + offset if true else value - rng.randint(0, 5)  # <


def _expression(rng: random.Random, num_operators: int, names: list[str]) -> tuple[str, int]:
    """A random expression with ``num_operators`` operators; (text, precedence of its root)."""
    if num_operators == 0:
        leaf = rng.choice(names) if rng.random() < 0.7 else str(rng.randint(1, 9))
        return leaf, 9
    operator = rng.choice(OPERATORS)
    if operator == "^":
        base, rank = _expression(rng, num_operators - 1, names)
        base = f"({base})" if rank <= 3 else base
        return f"{base} ^ 2", 3
    split = rng.randint(0, num_operators - 1)
    left, left_rank = _expression(rng, split, names)
    right, right_rank = _expression(rng, num_operators - 1 - split, names)
    rank = _PRECEDENCE[operator]
    left = f"({left})" if left_rank < rank else left
    right = f"({right})" if right_rank <= rank else right  # a - (b - c), a * (b * c): kept as written
    return f"{left} {operator} {right}", rank
