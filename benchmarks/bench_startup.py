"""Cold start, as users feel it: each timeraw_ benchmark runs in a fresh interpreter."""


class Startup:
    timeout = 120

    def timeraw_import_numba(self):
        return "import numba"

    def timeraw_import_fastact(self):
        return "import fastact"

    def timeraw_first_sigmoid_call(self):
        # with a warm on-disk cache: asv runs setup-free code after earlier benchmarks compiled it
        return """
        import numpy as np, fastact
        fastact.sigmoid(np.ones(1000, np.float32))
        """

    def timeraw_first_softmax_call(self):
        return """
        import numpy as np, fastact
        fastact.softmax(np.ones((10, 100), np.float32))
        """
