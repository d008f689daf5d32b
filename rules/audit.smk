# (stage rules added by the audit work)
