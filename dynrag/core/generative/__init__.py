"""The generative family (the paper's): an LLM writes the ids of the passages it needs.

It reads the query and all candidates and writes ids best first (``[3], [1]`` or ``None``).

- `reranker`: `GenerativeReranker`, the family's `dynrag.core.interface.Reranker`;
- `loader`: the family's loader (a model folder, or a model served by name);
- `prompts`: the prompt formats (what the model reads and writes), one registry;
- `parsing`: model text to passage positions, never raising;
- `constrained`: the selection grammar for constrained decoding;
- `tournament`: more candidates than one window;
- `backends`: how tokens are produced (transformers, vLLM, OpenAI-compatible servers);
- `answer_lm`: `AnswerGenerator`, the LM that answers from the selected passages (eval, rewards).
"""
