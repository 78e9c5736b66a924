"""Grading a class: find the submissions, run each in a sandboxed process, score, write the outputs.

The steps, one module each: `submissions` (who handed in which notebook),
`sandbox` (the grader's side of one confined run) with `worker` and `confine`
(the submission's side), `results` (a run's report, validated and scored),
`outputs` (gradebook, feedback, Gradescope, summary) and `batch` (the whole
class, in parallel and resumable).
"""
