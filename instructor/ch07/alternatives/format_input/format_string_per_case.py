"""one format string per case"""

PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request."


def format_input(entry: dict) -> str:
    """Two templates: with and without an input."""
    if len(entry["input"]) == 0:
        return "{}\n\n### Instruction:\n{}".format(PREAMBLE, entry["instruction"])
    return "{}\n\n### Instruction:\n{}\n\n### Input:\n{}".format(PREAMBLE, entry["instruction"], entry["input"])
