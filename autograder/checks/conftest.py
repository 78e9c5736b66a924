"""The checks' fixtures come from the course's pytest plugin, also when pytest runs them directly."""

pytest_plugins = ["autograder.check_plugin"]
