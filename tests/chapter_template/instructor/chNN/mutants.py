"""The template chapter's mutants, by exercise."""

from autograder.selftest import Mutant

MUTANTS: dict[str, list[Mutant]] = {
    "chNN.softmax": [
        Mutant("normalised over the first dimension", (("sum(dim=-1, keepdim=True)", "sum(dim=0, keepdim=True)"),)),
        Mutant(
            "no shift by the row maximum",
            (("shifted = scores - scores.max(dim=-1, keepdim=True).values", "shifted = scores"),),
        ),
        Mutant("exponentials left unnormalised", (("return exps / exps.sum(dim=-1, keepdim=True)", "return exps"),)),
    ],
}
