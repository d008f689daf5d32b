"""CoMe-sp / CoMe-mp hierarchical distillation of a CoMe checkpoint (rules come_sp, come_mp)."""
from layerpuzzle.posttrain_jobs import run_come_job
from layerpuzzle.jobs import run_job


def main(job):
    p = job.params
    variant = dict(p.variant)
    teacher = job.input.get("teacher", None)  # one path, or an empty list when the teacher is streamed
    if isinstance(teacher, (list, tuple)):
        teacher = teacher[0] if teacher else None
    return run_come_job(
        "sp" if p.method == "come_sp" else "mp",
        student_dir=job.input.student,
        dense_dir=job.input.model,
        data_path=job.input.data,
        teacher_path=str(teacher) if teacher else None,
        out_dir=job.output.ckpt,
        state_dir=p.state_dir,
        variant=variant,
        run_params={"data": dict(p.data), "source_checkpoint": job.input.student},
        target_fraction=p.target,
        base_model=p.model,
        dtype=p.dtype,
        device=p.device,
        checkpoint_every=p.checkpoint_every,
        lrs=list(p.lrs) if p.lrs else None,
    )


run_job(snakemake, main)  # noqa: F821
