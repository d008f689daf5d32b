# (stage rules added by the come work)
