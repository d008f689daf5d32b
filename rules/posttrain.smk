# (stage rules added by the posttrain work)
