"""What ``mpiexec -n P python mpi_worker.py SPEC.json`` runs for tests/training/test_distributed.py.

SPEC holds ``kind`` ("charlm", "classify", "seq2seq" or "tagger"), ``config`` (the settings' fields), ``out``
(the run directory), ``resume``, ``result`` (where rank 0 writes the JSON summary: the step, the stop
reason, every loss by step, the evaluation losses) and, for the fault tests, ``raise_on_rank``: that rank
raises at its first evaluation (``fault``: "bug", a RuntimeError, or "rnnlab", a RnnlabError of its own).
"""
import io
import json
import sys


def main(spec_path):
    from rnnlab.training import distributed

    with open(spec_path, encoding="utf-8") as file:
        spec = json.load(file)
    dist = distributed.context()
    if spec.get("raise_on_rank") == dist.rank:
        inject_fault(spec["kind"], spec.get("fault", "bug"))
    if spec["kind"] == "charlm":
        from rnnlab.training.charlm import train
        from rnnlab.training.config import TrainConfig

        result = train(TrainConfig(**spec["config"]), spec["out"], resume=spec["resume"], stream=sys.stderr)
        summary = {"val_loss": result.val_loss, "test_loss": result.test_loss}
    elif spec["kind"] == "classify":
        from rnnlab.training.classify import train
        from rnnlab.training.config import ClassifyConfig

        result = train(ClassifyConfig(**spec["config"]), spec["out"], resume=spec["resume"], stream=sys.stderr,
                       progress_bar=False)
        summary = {"history": result.history, "test_loss": result.test.loss if result.test else None,
                   "test_accuracy": result.test.accuracy if result.test else None}
    else:
        from rnnlab.training import seq2seq, tagging

        module, settings = (seq2seq, seq2seq.Seq2SeqConfig) if spec["kind"] == "seq2seq" else (tagging, tagging.TagConfig)
        result = module.train(settings(**spec["config"]), spec["out"], resume=spec["resume"], stream=sys.stderr,
                              progress_bar=False)
        summary = {"history": result.history}
    summary.update(step=result.step, stop_reason=result.stop_reason, ranks=dist.size,
                   losses={str(k): v for k, v in result.losses.items()},
                   allreduce_calls=dist.allreduce_calls)
    if dist.is_root:
        with open(spec["result"], "w", encoding="utf-8") as file:
            json.dump(summary, file)
    return 0


def inject_fault(kind, fault):
    from rnnlab.errors import RnnlabError

    def fail(*args, **kwargs):
        raise (RuntimeError if fault == "bug" else RnnlabError)("injected fault")

    if kind == "charlm":
        import rnnlab.training.charlm as module
        module.validate_and_sample = fail
    else:
        import rnnlab.training.classify as module
        module.end_of_epoch = fail


if __name__ == "__main__":
    from rnnlab.training.distributed import run_guarded

    sys.exit(run_guarded(main, sys.argv[1]))
