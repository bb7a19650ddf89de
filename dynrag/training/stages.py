"""The stages of `dynrag-train`, each reading and writing the run directory.

``bc`` -> ``sample`` -> ``reward`` -> ``pairs`` -> ``dpo`` is the published recipe (behaviour
cloning, then DPO on the best and worst of n samples scored by the generator). ``grpo`` is the
online alternative and ``feedback`` trains on in-house logs. Every stage is seeded, records its
inputs in the manifest, is skipped when already complete, and resumes when interrupted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import TrainingArguments

from dynrag.core.backends.base import GenerationRequest, GrammarSpec, SamplingParams
from dynrag.core.backends.transformers import resolve_device
from dynrag.core.parsing import parse_selection
from dynrag.core.types import Passage
from dynrag.eval.readers import EvalExample
from dynrag.training.config import TrainConfig, TrainerSettings
from dynrag.training.data import (
    PromptBuilder,
    expert_selection,
    fit_length,
    load_train_examples,
    make_teacher,
    with_missing_gold,
)
from dynrag.training.models import (
    choose_backend,
    load_policy,
    load_tokenizer,
    merge_checkpoint,
    save_checkpoint,
)
from dynrag.training.rewards import RewardScorer, ScoredSample
from dynrag.training.rundir import RunDir, is_main_process, read_jsonl

__all__ = [
    "STAGE_FUNCTIONS",
    "run_bc",
    "run_dpo",
    "run_feedback",
    "run_grpo",
    "run_pairs",
    "run_pipeline",
    "run_reward",
    "run_sample",
]

logger = logging.getLogger(__name__)


# -- shared helpers ----------------------------------------------------------------------------
def _wait() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def _trl_args(settings: TrainerSettings, config: TrainConfig, output_dir: Path) -> dict[str, Any]:
    """Arguments every TRL config of a stage shares."""
    device = resolve_device(config.device)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    args: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "warmup_steps": settings.warmup_ratio,
        "lr_scheduler_type": settings.lr_scheduler_type,
        "logging_steps": settings.logging_steps,
        "save_strategy": "steps",
        "save_steps": settings.save_steps,
        "save_total_limit": 2,
        "seed": config.seed,
        "data_seed": config.seed,
        "report_to": settings.report_to,
        "use_cpu": device.type == "cpu",
        "bf16": bf16,
        "dataloader_num_workers": 0,
    }
    # Always passed: TRL's configs default it to True, which would override our False.
    # transformers 5 renamed the argument (the old name still works, with a FutureWarning).
    key = "activation_checkpointing"
    if key not in TrainingArguments.__dataclass_fields__:
        key = "gradient_checkpointing"
    args[key] = settings.gradient_checkpointing
    args.update(settings.extra)
    return args


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder in ``output_dir`` that was written to the end.

    A trainer writes ``trainer_state.json`` last, so a folder without it is what a process
    killed while saving leaves behind; such folders are skipped with a warning (resuming from
    one fails), and the checkpoint before them is used.
    """
    from transformers.trainer import TRAINER_STATE_NAME
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not output_dir.is_dir():
        return None
    steps = {}
    for path in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        suffix = path.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
        if path.is_dir() and suffix.isdigit():
            steps[int(suffix)] = path
    for step in sorted(steps, reverse=True):
        if (steps[step] / TRAINER_STATE_NAME).is_file():
            return steps[step]
        logger.warning(
            "skipping %s: written only in part (the run stopped while saving it)", steps[step]
        )
    return None


def _train(trainer: Any, output_dir: Path) -> None:
    """Train, resuming from the newest complete checkpoint in ``output_dir`` when there is one."""
    last = last_complete_checkpoint(output_dir)
    if last:
        logger.info("resuming training from %s", last)
    trainer.train(resume_from_checkpoint=str(last) if last else None)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
        fh.flush()


def _done_ids(path: Path) -> set[str]:
    return {r["id"] for r in read_jsonl(path)} if path.is_file() else set()


def _finish_training(
    rd: RunDir, stage: str, trainer: Any, tokenizer: Any, start: str, extra: dict[str, Any]
) -> Path:
    checkpoint = save_checkpoint(
        trainer, tokenizer, rd.checkpoint(stage), rd.config, start, _trained_max_k(rd, start)
    )
    if is_main_process():
        if rd.config.save_merged:
            merge_checkpoint(checkpoint, rd.stage_dir(stage) / "merged")
        history = trainer.state.log_history
        _write_json(rd.stage_dir(stage) / "metrics.json", {"log_history": history, **extra})
        from dynrag.training.plots import plot_run

        plot_run(rd.path)
        rd.complete(stage, {"checkpoint": str(checkpoint), "start": start, **extra})
    _wait()
    return checkpoint


def _trained_max_k(rd: RunDir, start: str) -> int | None:
    """The largest k the model has been taught: its experts' (or its starting model's)."""
    from dynrag.core.loading import ModelConfig, resolve_model

    experts = rd.path / "bc" / "experts.json"
    if experts.is_file():
        return max((len(e["indices"]) for e in json.loads(experts.read_text())), default=None)
    start_cfg = ModelConfig.read(resolve_model(start).path)
    return start_cfg.max_k if start_cfg else None


def _passages(record: dict[str, Any]) -> list[Passage]:
    return [Passage.model_validate(p) for p in record["passages"]]


# -- bc ----------------------------------------------------------------------------------------
def run_bc(rd: RunDir, *, force: bool = False) -> Path:
    """Behaviour cloning: SFT on expert selections, loss on the completion only."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cfg = rd.config
    bc = cfg.bc
    inputs = {**rd.input_hashes([*cfg.data.train, *cfg.data.exclude]), "start": cfg.model}
    if rd.is_complete("bc", inputs, force=force):
        logger.info("bc: complete, skipped")
        return rd.checkpoint("bc")
    if is_main_process():
        rd.start("bc", inputs)
    stage_dir = rd.stage_dir("bc")
    examples = load_train_examples(cfg)
    if bc.drop_gold > 0:
        extra = with_missing_gold(examples, bc.drop_gold, cfg.seed)
        logger.info("bc: %d copies with one gold passage taken out", len(extra))
        examples = examples + extra
    tokenizer = load_tokenizer(cfg.model)
    builder = PromptBuilder(tokenizer, cfg.prompt_format, cfg.max_passage_tokens)
    teacher = make_teacher(bc.teacher, cfg)
    rows, experts = [], []
    for ex in tqdm(examples, desc="bc: expert selections", disable=not is_main_process()):
        selection = expert_selection(ex, bc, teacher)
        experts.append({"id": ex.id, "indices": selection, "gold": ex.gold})
        rows.append(
            {
                "prompt": builder.prompt(ex.question, ex.passages),
                "completion": builder.completion(selection),
            }
        )
    if is_main_process():
        _write_json(stage_dir / "experts.json", experts)
    rows, max_length = fit_length(rows, builder, bc.max_length, ["completion"])
    mean_k = sum(len(e["indices"]) for e in experts) / len(experts)
    logger.info("bc: %d examples, expert mean k %.2f, max length %d", len(rows), mean_k, max_length)
    model, peft_config = load_policy(cfg.model, cfg, bc)
    args = SFTConfig(
        **_trl_args(bc, cfg, stage_dir / "trainer"),
        max_length=max_length,
        completion_only_loss=True,
        packing=False,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    _train(trainer, stage_dir / "trainer")
    return _finish_training(
        rd, "bc", trainer, tokenizer, cfg.model, {"examples": len(rows), "expert_mean_k": mean_k}
    )


# -- sample ------------------------------------------------------------------------------------
def _sampling_reranker(policy: str, rd: RunDir) -> Any:
    from dynrag.core.reranker import DynamicReranker

    cfg = rd.config
    backend = choose_backend(cfg.sample.backend)
    kwargs: dict[str, Any] = {}
    if backend == "transformers":
        kwargs["batch_size"] = cfg.sample.batch_size
    else:  # vLLM loads full weights: merge an adapter once
        policy = str(merge_checkpoint(policy, rd.stage_dir("sample") / "merged-policy"))
        kwargs["gpu_memory_utilization"] = 0.4
    return DynamicReranker.from_pretrained(
        policy,
        device=cfg.device,
        backend=backend,
        max_passage_tokens=cfg.max_passage_tokens,
        window_size=cfg.max_candidates,
        prompt_format=cfg.prompt_format,
        **kwargs,
    )


def sample_selections(
    reranker: Any,
    examples: list[EvalExample],
    *,
    n: int,
    temperature: float,
    top_p: float = 1.0,
    constrained: bool = True,
    seed: int | None = None,
) -> list[list[dict[str, Any]]]:
    """``n`` sampled selections per example from a `DynamicReranker`'s model.

    Each sample is ``{"text", "indices", "status"}``; indices are 0-based and parsed with the
    same parser as inference (never raises; unreadable text has status ``fallback``).
    """
    fmt = reranker.prompt_format
    builder = PromptBuilder(reranker.backend.tokenizer, fmt, reranker.max_passage_tokens)
    requests = []
    for ex in examples:
        grammar = GrammarSpec(fmt=fmt, num_candidates=len(ex.passages)) if constrained else None
        requests.append(GenerationRequest(builder.messages(ex.question, ex.passages), grammar))
    longest = max(len(ex.passages) for ex in examples)
    params = SamplingParams(
        max_new_tokens=8 + 5 * longest, temperature=temperature, top_p=top_p, n=n, seed=seed
    )
    outputs = reranker.backend.generate(requests, params)
    result = []
    for ex, texts in zip(examples, outputs, strict=True):
        samples = []
        for text in texts:
            parsed = parse_selection(text, len(ex.passages))
            samples.append(
                {"text": text, "indices": list(parsed.indices), "status": parsed.status.value}
            )
        result.append(samples)
    return result


def run_sample(rd: RunDir, *, force: bool = False) -> Path:
    """``sample.n`` selections per training question from the current policy."""
    cfg = rd.config
    policy = rd.policy(before="dpo")
    inputs = {**rd.input_hashes([*cfg.data.train, *cfg.data.exclude]), "policy": policy}
    out = rd.stage_dir("sample") / "samples.jsonl"
    if rd.is_complete("sample", inputs, force=force):
        logger.info("sample: complete, skipped")
        return out
    if not is_main_process():
        _wait()
        return out
    if (
        force
        and out.is_file()
        and rd.manifest["stages"].get("sample", {}).get("status") == "complete"
    ):
        out.unlink()
    rd.start("sample", inputs)
    examples = load_train_examples(cfg, limit=cfg.sample.limit)
    done = _done_ids(out)
    todo = [ex for ex in examples if ex.id not in done]
    if done:
        logger.info("sample: %d questions already sampled, %d to go", len(done), len(todo))
    reranker = _sampling_reranker(policy, rd)
    chunk = 4
    with tqdm(total=len(examples), initial=len(done), desc="sample") as bar:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            sampled = sample_selections(
                reranker,
                part,
                n=cfg.sample.n,
                temperature=cfg.sample.temperature,
                top_p=cfg.sample.top_p,
                constrained=cfg.sample.constrained,
                seed=cfg.seed + len(done) + start,
            )
            records = [
                {
                    "id": ex.id,
                    "question": ex.question,
                    "answers": ex.answers,
                    "gold": ex.gold,
                    "passages": [p.model_dump() for p in ex.passages],
                    "samples": samples,
                }
                for ex, samples in zip(part, sampled, strict=True)
            ]
            _append_jsonl(out, records)
            bar.update(len(part))
    all_k = [len(s["indices"]) for r in read_jsonl(out) for s in r["samples"]]
    rd.complete(
        "sample",
        {"samples": str(out), "policy": policy, "mean_k": sum(all_k) / max(len(all_k), 1)},
    )
    _wait()
    return out


def _file_stage(
    rd: RunDir, stage: str, upstream: str, upstream_file: str, out_name: str, force: bool
) -> tuple[Path, bool]:
    """Common start of a stage that turns one JSONL file into another, on the main process.

    Returns the output path and whether this process must do the work (False: already
    complete, or not the main process, which then waits for the main one).

    Raises:
        FileNotFoundError: the upstream stage's file is missing.
    """
    source = rd.stage_dir(upstream) / upstream_file
    if not source.is_file():
        msg = f"no {upstream_file} at {source}; run the {upstream} stage first"
        raise FileNotFoundError(msg)
    inputs = rd.input_hashes([source])
    out = rd.stage_dir(stage) / out_name
    if rd.is_complete(stage, inputs, force=force):
        logger.info("%s: complete, skipped", stage)
        return out, False
    if not is_main_process():
        _wait()
        return out, False
    rd.start(stage, inputs)
    return out, True


# -- reward ------------------------------------------------------------------------------------
def run_reward(rd: RunDir, *, force: bool = False) -> Path:
    """The generator answers from every sampled selection; each sample gets its reward terms."""
    cfg = rd.config
    out, todo = _file_stage(rd, "reward", "sample", "samples.jsonl", "rewards.jsonl", force)
    if not todo:
        return out
    records = list(read_jsonl(rd.stage_dir("sample") / "samples.jsonl"))
    done = _done_ids(out)
    scorer = RewardScorer(cfg.reward, device=cfg.device)
    for record in tqdm(records, desc="reward", initial=0):
        if record["id"] in done:
            continue
        scored = scorer.score(
            record["id"],
            record["question"],
            _passages(record),
            record["answers"],
            record["samples"],
            record.get("gold"),
        )
        _append_jsonl(out, [{**record, "samples": [s.model_dump() for s in scored]}])
    rewards = [s["reward"] for r in read_jsonl(out) for s in r["samples"]]
    rd.complete("reward", {"rewards": str(out), "mean_reward": sum(rewards) / max(len(rewards), 1)})
    _wait()
    return out


# -- pairs -------------------------------------------------------------------------------------
def best_worst_pair(
    samples: list[ScoredSample], margin: float
) -> tuple[ScoredSample, ScoredSample] | None:
    """The best and the worst sample of one question.

    None when they tie: a reward gap under ``margin``, or the same selection.
    """
    if len(samples) < 2:
        return None
    best = max(samples, key=lambda s: s.reward)
    worst = min(samples, key=lambda s: s.reward)
    if best.reward - worst.reward < margin or best.reward == worst.reward:
        return None
    if best.indices == worst.indices and worst.status != "fallback":
        return None
    return best, worst


def run_pairs(rd: RunDir, *, force: bool = False) -> Path:
    """Preference pairs: chosen = best, rejected = worst sample per question."""
    cfg = rd.config
    out, todo = _file_stage(rd, "pairs", "reward", "rewards.jsonl", "pairs.jsonl", force)
    if not todo:
        return out
    pairs, ties = [], 0
    for record in read_jsonl(rd.stage_dir("reward") / "rewards.jsonl"):
        samples = [ScoredSample.model_validate(s) for s in record["samples"]]
        pair = best_worst_pair(samples, cfg.pairs.margin)
        if pair is None:
            ties += 1
            continue
        best, worst = pair
        pairs.append(
            {
                "id": record["id"],
                "question": record["question"],
                "passages": record["passages"],
                "chosen": best.indices,
                "rejected": worst.indices,
                "rejected_text": worst.text if worst.status == "fallback" else None,
                "chosen_reward": best.reward,
                "rejected_reward": worst.reward,
            }
        )
    out.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    logger.info("pairs: %d pairs, %d questions dropped as ties", len(pairs), ties)
    rd.complete("pairs", {"pairs": str(out), "count": len(pairs), "ties_dropped": ties})
    _wait()
    return out


# -- dpo ---------------------------------------------------------------------------------------
def _dpo(rd: RunDir, stage: str, start: str, pairs: list[dict[str, Any]], settings: Any) -> Path:
    """DPO on pairs ``{question, passages, chosen, rejected[, rejected_text]}``."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    cfg = rd.config
    if not pairs:
        msg = (
            f"{stage}: no preference pairs to train on (all ties?); lower the margin or sample more"
        )
        raise ValueError(msg)
    stage_dir = rd.stage_dir(stage)
    tokenizer = load_tokenizer(start)
    builder = PromptBuilder(tokenizer, cfg.prompt_format, cfg.max_passage_tokens)
    rows = []
    for p in pairs:
        passages = [Passage.model_validate(x) for x in p["passages"]]
        rejected = (
            p["rejected_text"] + tokenizer.eos_token
            if p.get("rejected_text")
            else builder.completion(p["rejected"])
        )
        rows.append(
            {
                "prompt": builder.prompt(p["question"], passages),
                "chosen": builder.completion(p["chosen"]),
                "rejected": rejected,
            }
        )
    rows, max_length = fit_length(rows, builder, settings.max_length, ["chosen", "rejected"])
    model, peft_config = load_policy(start, cfg, settings)
    args = DPOConfig(
        **_trl_args(settings, cfg, stage_dir / "trainer"),
        max_length=max_length,
        beta=settings.beta,
        loss_type=[settings.loss_type],
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    _train(trainer, stage_dir / "trainer")
    k_chosen = sum(len(p["chosen"]) for p in pairs) / len(pairs)
    k_rejected = sum(len(p["rejected"]) for p in pairs) / len(pairs)
    extra = {"pairs": len(rows), "mean_k_chosen": k_chosen, "mean_k_rejected": k_rejected}
    return _finish_training(rd, stage, trainer, tokenizer, start, extra)


def run_dpo(rd: RunDir, *, force: bool = False) -> Path:
    """DPO (LoRA by default) from the policy that sampled the pairs."""
    pairs_path = rd.stage_dir("pairs") / "pairs.jsonl"
    if not pairs_path.is_file():
        msg = f"no pairs at {pairs_path}; run the pairs stage first"
        raise FileNotFoundError(msg)
    start = rd.manifest["stages"].get("sample", {}).get("outputs", {}).get("policy")
    start = start or rd.policy(before="dpo")
    inputs = {**rd.input_hashes([pairs_path]), "start": start}
    if rd.is_complete("dpo", inputs, force=force):
        logger.info("dpo: complete, skipped")
        return rd.checkpoint("dpo")
    if is_main_process():
        rd.start("dpo", inputs)
    return _dpo(rd, "dpo", start, list(read_jsonl(pairs_path)), rd.config.dpo)


# -- feedback ----------------------------------------------------------------------------------
def run_feedback(rd: RunDir, *, force: bool = False) -> Path:
    """In-house feedback logs -> preference pairs -> DPO from the run's newest policy."""
    from dynrag.training.feedback import feedback_pairs, read_feedback

    cfg = rd.config
    if not cfg.feedback.path:
        msg = "feedback.path names no file; list the feedback JSONL files in the config"
        raise ValueError(msg)
    start = rd.policy(before="feedback")
    inputs = {**rd.input_hashes(cfg.feedback.path), "start": start}
    if rd.is_complete("feedback", inputs, force=force):
        logger.info("feedback: complete, skipped")
        return rd.checkpoint("feedback")
    records = [r for path in cfg.feedback.path for r in read_feedback(path)]
    pairs = feedback_pairs(records, cfg.feedback.rating_margin)
    if is_main_process():
        rd.start("feedback", inputs)
        (rd.stage_dir("feedback") / "pairs.jsonl").write_text(
            "".join(p.model_dump_json() + "\n" for p in pairs), encoding="utf-8"
        )
    rows = [
        {
            "question": p.query,
            "passages": [x.model_dump() for x in p.passages],
            "chosen": p.chosen,
            "rejected": p.rejected,
        }
        for p in pairs
    ]
    return _dpo(rd, "feedback", start, rows, cfg.feedback)


# -- grpo --------------------------------------------------------------------------------------
class SelectionReward:
    """A TRL reward function: parse each completion, let the generator answer, score it.

    Also logs the mean k of each batch (``mean_k``) and appends reward and k per step to
    ``grpo/steps.jsonl`` for the training plot.
    """

    __name__ = "dynrag_reward"

    def __init__(self, scorer: RewardScorer, log_path: Path | None = None) -> None:
        """Score with ``scorer``; write per-step statistics to ``log_path``."""
        self.scorer = scorer
        self.log_path = log_path

    def __call__(
        self,
        prompts: list[str],
        completions: list[str],
        *,
        id: list[str],
        question: list[str],
        answers: list[list[str]],
        passages: list[str],
        gold: list[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        trainer_state: Any = None,
        **_: Any,
    ) -> list[float]:
        """One reward per completion (TRL passes dataset columns as lists)."""
        rewards, ks = [], []
        for i, text in enumerate(completions):
            items = [Passage.model_validate(p) for p in json.loads(passages[i])]
            parsed = parse_selection(text, len(items))
            sample = {"text": text, "indices": list(parsed.indices), "status": parsed.status.value}
            labels = None if gold is None else json.loads(gold[i])
            scored = self.scorer.score(
                id[i], question[i], items, answers[i], [sample], gold_indices=labels
            )[0]
            rewards.append(scored.reward)
            ks.append(len(parsed.indices))
        mean_k = sum(ks) / len(ks)
        if log_metric is not None:
            log_metric("mean_k", mean_k)
        if self.log_path is not None and is_main_process():
            step = getattr(trainer_state, "global_step", None)
            record = {"step": step, "reward": sum(rewards) / len(rewards), "mean_k": mean_k}
            _append_jsonl(self.log_path, [record])
        return rewards


def run_grpo(rd: RunDir, *, force: bool = False) -> Path:
    """Online RL with TRL's GRPOTrainer, rewarded by the generator's answers."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from dynrag.core.constrained import selection_regex
    from dynrag.core.prompts import get_prompt_format

    cfg = rd.config
    settings = cfg.grpo
    start = rd.policy(before="grpo")
    inputs = {**rd.input_hashes([*cfg.data.train, *cfg.data.exclude]), "start": start}
    if rd.is_complete("grpo", inputs, force=force):
        logger.info("grpo: complete, skipped")
        return rd.checkpoint("grpo")
    if is_main_process():
        rd.start("grpo", inputs)
    stage_dir = rd.stage_dir("grpo")
    examples = load_train_examples(cfg, limit=settings.limit)
    tokenizer = load_tokenizer(start)
    builder = PromptBuilder(tokenizer, cfg.prompt_format, cfg.max_passage_tokens)
    rows = [
        {
            "prompt": builder.prompt(ex.question, ex.passages),
            "id": ex.id,
            "question": ex.question,
            "answers": ex.answers,
            "passages": json.dumps([p.model_dump() for p in ex.passages]),
            "gold": json.dumps(ex.gold),  # JSON: None (unlabelled) and [] both survive
        }
        for ex in examples
    ]
    longest = max(len(ex.passages) for ex in examples)
    model, peft_config = load_policy(start, cfg, settings)
    trl_args = _trl_args(settings, cfg, stage_dir / "trainer")
    trl_args["per_device_train_batch_size"] = settings.batch_size * settings.num_generations
    grpo_kw: dict[str, Any] = {}
    if settings.use_vllm:
        fmt = get_prompt_format(cfg.prompt_format)
        grpo_kw.update(use_vllm=True, vllm_structured_outputs_regex=selection_regex(fmt, longest))
    args = GRPOConfig(
        **trl_args,
        num_generations=settings.num_generations,
        max_completion_length=8 + 5 * longest,
        temperature=settings.temperature,
        beta=settings.beta,
        **grpo_kw,
    )
    reward = SelectionReward(RewardScorer(cfg.reward, device=cfg.device), stage_dir / "steps.jsonl")
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,  # type: ignore[arg-type]  # a callable object, as TRL documents
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    _train(trainer, stage_dir / "trainer")
    return _finish_training(rd, "grpo", trainer, tokenizer, start, {"questions": len(rows)})


STAGE_FUNCTIONS: dict[str, Callable[..., Path]] = {
    "bc": run_bc,
    "sample": run_sample,
    "reward": run_reward,
    "pairs": run_pairs,
    "dpo": run_dpo,
    "grpo": run_grpo,
    "feedback": run_feedback,
}
"""Each stage's function, by name."""


def run_pipeline(config: TrainConfig, *, force: bool = False) -> Path:
    """Run ``config.stages`` in order, skipping stages already complete; returns the final model."""
    rd = RunDir(config)
    if is_main_process():
        rd.save()
    for stage in config.stages:
        logger.info("stage %s", stage)
        STAGE_FUNCTIONS[stage](rd, force=force)
        rd.manifest = rd._load()
    final = rd.policy()
    logger.info("final model: %s", final)
    return Path(final)
