"""sections joined with blank lines, the input read with get"""


def format_input(entry):
    """The parts of the prompt, joined by blank lines."""
    sections = [
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
        "### Instruction:\n" + entry["instruction"],
    ]
    if entry.get("input"):
        sections.append("### Input:\n" + entry["input"])
    return "\n\n".join(sections)
