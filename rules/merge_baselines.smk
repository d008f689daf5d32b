# (stage rules added by the merge_baselines work)
