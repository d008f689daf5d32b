"""Teacher activations at the layers a_i of a CoMe checkpoint's layer map (rule posttrain_teacher)."""
from layerpuzzle.posttrain_jobs import run_teacher_job
from layerpuzzle.jobs import run_job


def main(job):
    return run_teacher_job(
        dense_dir=job.input.model,
        data_path=job.input.data,
        student_dir=job.input.student,
        out_path=job.output.acts,
        batch_size=job.params.batch_size,
        dtype=job.params.dtype,
        device=job.params.device,
        meta={"model": job.params.model, "data": job.wildcards.tdata, "student": job.input.student},
    )


run_job(snakemake, main)  # noqa: F821
