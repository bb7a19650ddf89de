"""Dataset readers, kept here for older imports: they live in `dynrag.data.readers`.

``EvalExample`` is `dynrag.data.examples.QAExample`, the example type of training and eval.
"""

from dynrag.data.examples import QAExample
from dynrag.data.readers import FORMATS, detect_format, drop_questions_in, read_examples

EvalExample = QAExample

__all__ = [
    "FORMATS",
    "EvalExample",
    "QAExample",
    "detect_format",
    "drop_questions_in",
    "read_examples",
]
