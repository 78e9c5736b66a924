"""Grading a class: find the submissions, run each in a sandboxed process, score, write the outputs.

The steps, one module each:

- `submissions`: who handed in which notebook;
- `sandbox`: the grader's side of one confined run, and the fork server;
- `worker`: the submission's side of that run (loads the notebook, produces the split checks' outputs);
- `confine`: namespaces, mounts and resource limits for the submission's process;
- `guard`: remembers the functions grading relies on, and names any a submission replaced;
- `verdicts`: draws the split checks' cases and decides them from a submission's outputs, in the grader;
- `results`: a run's report, validated and scored;
- `outputs`: gradebook, feedback, Gradescope results, summary;
- `atomic`: files written whole or not at all;
- `batch`: the whole class, in parallel and resumable;
- `gradescope_bundle`: the Gradescope autograder zip, and its `run_autograder` entry point.
"""
