"""The benchmark cases of ``bench/run.py``; each module runs in a worker process of its own."""
