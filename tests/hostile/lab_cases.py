CASES = []


def run_all(cases):
    return []
