# (stage rules added by the dlp_baselines work)
