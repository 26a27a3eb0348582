"""The one exception type for malformed input data."""


class DataFormatError(ValueError):
    """A data file is missing or malformed; the message names file, line and problem.

    Attributes:
        path: str. The file.
        line: int or None. 1-based line number (None when the problem is the whole file).
        problem: str. What is wrong.
    """

    def __init__(self, path, line, problem):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        return (type(self), (self.path, self.line, self.problem))
