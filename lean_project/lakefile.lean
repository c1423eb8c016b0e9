import Lake
open Lake DSL

-- The Lean project that the dojo and repl environments run in: Lean and Mathlib
-- v4.20.0, the versions lean-dojo 4.20.0 supports (lake-manifest.json pins every
-- dependency to the revisions of miniF2F-lean4 at commit be17324). Set it up with
-- `prover setup-lean` (`lake exe cache get`, then `lake build`).
package «LeanProver»

@[default_target]
lean_lib LeanProver

require mathlib from git "https://github.com/leanprover-community/mathlib4" @ "v4.20.0"
