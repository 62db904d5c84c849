"""Repository-wide pytest setup: nbval collects the book's MyST `.md` notebooks (see the plugin's docstring)."""

pytest_plugins = ["mlc_lab.grading.pytest_plugin"]
