"""A reranker model behind any OpenAI-compatible server (``vllm serve``, llama.cpp, ...).

Chat completions over HTTP with the ``openai`` client: concurrent requests bounded by a
semaphore, a timeout per request, and retries with exponential back-off (tenacity) on
connection errors, time-outs, 429 and 5xx. The selection grammar is sent as the server's
structured-output parameter where it has one (``structured_output="vllm"``: a regex;
``"llama.cpp"``: a GBNF grammar); otherwise the text is parsed and repaired as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Literal

from dynrag.core.generative.backends.base import (
    GenerationRequest,
    GrammarSpec,
    HFTokenizerText,
    SamplingParams,
)
from dynrag.core.generative.constrained import selection_gbnf, selection_regex

__all__ = ["OpenAIBackend"]

logger = logging.getLogger(__name__)

StructuredOutput = Literal["vllm", "llama.cpp", "none"]


class OpenAIBackend(HFTokenizerText):
    """Generation through ``/v1/chat/completions`` of an OpenAI-compatible server."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "EMPTY",
        structured_output: StructuredOutput = "none",
        tokenizer: Any = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_concurrency: int = 8,
    ) -> None:
        """Point at a server.

        Args:
            base_url: The server's OpenAI base URL, e.g. ``http://127.0.0.1:8000/v1``.
            model: The served model's name.
            api_key: Sent as the bearer token (servers on loopback usually ignore it).
            structured_output: How the server constrains output: ``vllm`` (regex through
                ``structured_outputs`` / ``guided_regex``), ``llama.cpp`` (GBNF ``grammar``), or
                ``none`` (parse and repair).
            tokenizer: A Hugging Face tokenizer (or its folder/name) for exact passage
                truncation; without one, 4 characters count as a token.
            timeout: Seconds per request.
            max_retries: Attempts after the first on transient errors.
            max_concurrency: Requests in flight at once.
        """
        try:
            import openai  # noqa: F401
            import tenacity  # noqa: F401
        except ImportError as err:
            msg = (
                "the OpenAI-compatible backend needs openai and tenacity: pip install dynrag[serve]"
            )
            raise ImportError(msg) from err
        if structured_output not in ("vllm", "llama.cpp", "none"):
            msg = f"structured_output must be vllm, llama.cpp or none, not {structured_output!r}"
            raise ValueError(msg)
        self.base_url = base_url
        self.model = model
        self.api_key = api_key
        self.structured_output = structured_output
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_concurrency = max_concurrency
        if isinstance(tokenizer, str):
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer, trust_remote_code=False)
        self.tokenizer = tokenizer

    @classmethod
    def load(
        cls,
        model: str,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
        **options: Any,
    ) -> OpenAIBackend:
        """Point at the server serving ``model`` (its name there); ``options`` are `__init__`'s.

        The server owns device, dtype and batching, so those must be left unset.

        Raises:
            ValueError: no ``base_url``, or ``device``/``dtype``/``batch_size`` given.
        """
        given = [
            n for n, v in (("device", device), ("dtype", dtype), ("batch_size", batch_size)) if v
        ]
        if given:
            msg = f"backend='openai' runs on the server: {', '.join(given)} cannot be set here"
            raise ValueError(msg)
        if "base_url" not in options:
            msg = "backend='openai' needs base_url=, e.g. 'http://127.0.0.1:8000/v1'"
            raise ValueError(msg)
        return cls(model=model, **options)

    # -- text ------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """Tokens by the tokenizer when given, else ``ceil(len(text) / 4)``."""
        if self.tokenizer is not None:
            return super().count_tokens(text)
        return -(-len(text) // 4)

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        """``text`` cut to about ``max_tokens`` tokens, and whether it was cut."""
        if self.tokenizer is not None:
            return super().truncate(text, max_tokens)
        limit = max_tokens * 4
        return (text[:limit], True) if len(text) > limit else (text, False)

    # -- generation ------------------------------------------------------------------------
    def _extra_body(self, grammar: GrammarSpec | None) -> dict[str, Any]:
        if grammar is None or self.structured_output == "none":
            return {}
        if self.structured_output == "vllm":
            regex = selection_regex(grammar)
            # vLLM >= 0.10 reads structured_outputs; older releases read guided_regex.
            return {"structured_outputs": {"regex": regex}, "guided_regex": regex}
        return {"grammar": selection_gbnf(grammar)}

    async def agenerate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[list[str]]:
        """Complete every request ``params.n`` times, concurrently."""
        import openai
        from tenacity import (
            AsyncRetrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential,
        )

        transient = (
            openai.APIConnectionError,
            openai.APITimeoutError,
            openai.RateLimitError,
            openai.InternalServerError,
        )
        limit = asyncio.Semaphore(self.max_concurrency)
        async with openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0
        ) as client:

            async def one(request: GenerationRequest) -> list[str]:
                kwargs: dict[str, Any] = {
                    "model": self.model,
                    "messages": request.messages,
                    "max_tokens": params.max_new_tokens,
                    "temperature": params.temperature,
                    "top_p": params.top_p,
                    "n": params.n,
                }
                if params.seed is not None:
                    kwargs["seed"] = params.seed
                extra = self._extra_body(request.grammar)
                if extra:
                    kwargs["extra_body"] = extra
                async with limit:
                    async for attempt in AsyncRetrying(
                        retry=retry_if_exception_type(transient),
                        stop=stop_after_attempt(self.max_retries + 1),
                        wait=wait_exponential(multiplier=0.5, max=8),
                        reraise=True,
                    ):
                        with attempt:
                            response = await client.chat.completions.create(**kwargs)
                texts = [(c.message.content or "").strip() for c in response.choices]
                # Servers that ignore n give one choice: ask again for the rest.
                while len(texts) < params.n:
                    more = await client.chat.completions.create(**{**kwargs, "n": 1})
                    texts.append((more.choices[0].message.content or "").strip())
                return texts[: params.n]

            return list(await asyncio.gather(*(one(r) for r in requests)))

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[list[str]]:
        """`agenerate` from synchronous code (in its own event loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.agenerate(requests, params))
        # Called from inside an event loop: run the requests on a worker thread's loop.
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self.agenerate(requests, params)).result()
