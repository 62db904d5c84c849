def run_check(*a, **k):
    pass
