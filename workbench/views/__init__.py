"""What a person SEES: Qt widgets and the window. No simulation logic here.

The window talks to one ``Session`` (``session``, ``sim_loop``: the worker thread) and each view
(``qt_*``) draws immutable snapshots. May import ``analysis``, ``exchange``, ``engine``,
``models`` and the shared base; never ``cli``.
"""
