"""Instructor-only material, one folder per chapter: `chNN/hidden.py` (the hidden checks),
`chNN/recorder.py` (what `course fixtures` records for the public checks), `chNN/mutants.py`
(realistic mistakes, by exercise) and `chNN/alternatives/<exercise>/*.py` (correct code written
another way). Never part of a student release, and out of a submission's reach while it is graded."""
