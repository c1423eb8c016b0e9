-- Building this library builds (or fetches from Mathlib's cache) everything the
-- prover's theorems import. Statements typed in with `prover attack --statement`
-- are written for LeanDojo to `.lake/prover-scratch/LeanProver/Scratch/<name>.lean`.
import Mathlib
import Aesop
