"""The window's state follows the model and the data: opening a model, then data, then other data
leaves nothing of before in any view; every view draws silent, infinite and NaN snapshots; the
layer table fits a 1280x800 window; a view's exception reaches the Messages dock."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyqtgraph as pg
import pytest
from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QLabel

from tests.view_data import snapshot as make_view_snapshot
from workbench.analysis.layer_stats import LayerStats
from workbench.engine.trace import LayerTrace, Trace
from workbench.models import network as nw
from workbench.views.app import build_window
from workbench.views.qt_main_window import PLOT_VIEWS, load_views
from workbench.views.qt_network_table import QtNetworkTable

LONG = 60_000


def mlp(classes: int = 3) -> nw.Network:
    """input (4, 4, 1) -> mlp_flat (16) -> mlp_hidden (8, tanh) -> mlp_out (classes)."""
    rng = np.random.default_rng(5)
    return nw.Network("tiny_mlp", [
        nw.Layer("mlp_in", nw.INPUT, (4, 4, 1)),
        nw.Layer("mlp_flat", nw.FLATTEN, (16,), ("mlp_in",)),
        nw.Layer("mlp_hidden", nw.DENSE, (8,), ("mlp_flat",), rng.normal(0.2, 0.3, (16, 8)),
                 rng.uniform(0.0, 0.1, 8), "relu"),
        nw.Layer("mlp_out", nw.DENSE, (classes,), ("mlp_hidden",), rng.normal(0.0, 0.5, (8, classes)),
                 np.zeros(classes), "linear"),
    ])


def view_texts(view) -> list[str]:
    """Every text a view shows: labels, plot titles, axis labels and ticks, legend entries."""
    texts = [w.text() for w in view.findChildren(QLabel)]
    for gv in view.findChildren(pg.GraphicsView):
        for item in gv.scene().items():
            if isinstance(item, pg.LabelItem):
                texts.append(item.text)
            elif isinstance(item, pg.AxisItem):
                texts.append(item.labelText)
                for level in item._tickLevels or []:
                    texts.extend(str(label) for _pos, label in level)
            elif isinstance(item, pg.TextItem):
                texts.append(item.toPlainText())
    return texts


def stale_names(window, names) -> dict[str, list[str]]:
    """{view: [texts naming one of ``names``]} (word match: 'conv2', not 'mlp_conv2x')."""
    import re

    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    out = {}
    for key, view in window.views.items():
        view.refresh()
        hits = [t for t in view_texts(view) if pattern.search(t or "")]
        if hits:
            out[key] = hits
    return out


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "wb.ini"), QSettings.Format.IniFormat)
    errors = []
    session, win = build_window(settings=settings, error_handler=lambda m, d: errors.append(m))
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitUntil(lambda: session.snapshot is not None, timeout=LONG)
    win.errors = errors
    yield win
    win.close()


def wait_t(qtbot, session, t):
    qtbot.waitUntil(lambda: session.snapshot is not None and session.snapshot.t == t and not session.running,
                    timeout=LONG)


def test_model_after_model_and_data_after_data_leave_nothing_of_before(qtbot, window, tmp_path):
    s = window.session
    demo_names = [layer.name for layer in s.network.layers if layer.name not in ("input", "output")]  # words of labels too
    s.select_batch(0, 8)
    qtbot.waitUntil(lambda: s.snapshot is not None and s.snapshot.batch == 8, timeout=LONG)
    window.views["membrane"].add_neuron("conv2", 5)
    s.select_layer("conv2")
    s.run_to(20)
    wait_t(qtbot, s, 20)
    assert stale_names(window, demo_names)  # the check sees the demo's names while it runs
    assert window.views["accuracy"].legend_names() == [str(i) for i in range(10)]

    # another model, which the open data (8x8 digits) does not fit: nothing runs
    mlp().save(tmp_path / "mlp.npz")
    with qtbot.waitSignal(s.network_changed, timeout=LONG):
        window.open_model(tmp_path / "mlp.npz")
    qtbot.waitUntil(lambda: s.snapshot is None, timeout=LONG)
    assert s.samples is None
    assert stale_names(window, demo_names) == {}
    assert window.views["membrane"].watched() == []
    assert window.views["ann_vs_snn"].r_layers() == []
    assert window.views["accuracy"].legend_names() == []
    assert window.views["rates"].bar_values()[0] == []
    assert window.views["raster"].image.image is None and window.views["heatmap"].image.image is None
    # the architecture shows at once, and what is missing is said in the window
    assert window.table.names_in_order() == ["mlp_in", "mlp_flat", "mlp_hidden", "mlp_out"]
    assert window.table.cell_text("mlp_hidden", "neurons") == "8" and window.table.cell_text("mlp_hidden", "r") == "–"
    assert window.table_panel.notice.isVisibleTo(window) and "No data open" in window.table_panel.notice.text()
    assert "(N, 4, 4, 1)" in window.table_panel.notice.text()

    # data A: 3 classes
    x = np.random.default_rng(1).uniform(0, 1, (12, 4, 4, 1)).astype(np.float32)
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(12) % 3)
    with qtbot.waitSignal(s.data_changed, timeout=LONG):
        s.open_data(tmp_path / "a.npz")
    qtbot.waitUntil(lambda: s.snapshot is not None, timeout=LONG)
    assert not window.table_panel.notice.isVisibleTo(window)
    s.select_batch(0, 4)
    qtbot.waitUntil(lambda: s.snapshot is not None and s.snapshot.batch == 4, timeout=LONG)
    s.run_to(15)
    wait_t(qtbot, s, 15)
    assert stale_names(window, demo_names) == {}
    assert window.views["accuracy"].legend_names() == ["0", "1", "2"]
    assert window.views["ann_vs_snn"].r_layers() == ["mlp_hidden", "mlp_out"]

    # data B: fewer samples; the run starts over, the r history and the rasters of A are gone
    np.savez(tmp_path / "b.npz", x=x[:5], y=np.arange(5) % 3)
    with qtbot.waitSignal(s.data_changed, timeout=LONG):
        s.open_data(tmp_path / "b.npz")
    qtbot.waitUntil(lambda: s.snapshot is not None and s.snapshot.t == 0 and len(s.samples) == 5, timeout=LONG)
    for view in window.views.values():
        view.refresh()
    for name in ("mlp_hidden", "mlp_out"):
        assert len(window.views["ann_vs_snn"].r_curve(name)[0] or ()) == 0
    assert window.views["raster"].image.image is None
    assert all(x is None or len(x) == 0 for x, _y in window.views["accuracy"].count_curves())
    assert window.statusBar().prediction_label.text().startswith("no step yet")
    assert not window.errors


def _broken(snap, kind: str):
    """``snap`` with every number silent (0), infinite or NaN."""
    fill = {"silent": 0.0, "inf": np.inf, "nan": np.nan}[kind]

    def arr(a):
        return None if a is None else np.full(np.shape(a), fill if kind != "silent" or a.dtype.kind == "f" else 0,
                                              dtype=np.float64 if kind != "silent" else a.dtype)

    layers = tuple(dataclasses.replace(ls, counts=arr(ls.counts) if kind != "silent" else np.zeros_like(ls.counts),
                                       spikes=None if ls.spikes is None else np.zeros_like(ls.spikes),
                                       membrane=arr(ls.membrane), ann=arr(ls.ann), output=arr(ls.output),
                                       max_rate=fill if kind != "silent" else ls.max_rate,
                                       threshold=fill if kind != "silent" else ls.threshold,
                                       output_scale=fill if kind != "silent" else ls.output_scale)
                   if ls.is_neuron else ls for ls in snap.layers)
    stats = tuple(LayerStats(st.name, st.neurons, fill, fill, 1.0 if kind == "silent" else fill, fill, fill)
                  for st in snap.stats)
    h = snap.history
    history = Trace({n: LayerTrace(lt.name, lt.shape, np.zeros_like(lt.spikes),
                                   None if lt.membrane is None else np.full(lt.membrane.shape, fill))
                     for n, lt in h.layers.items()}, h.steps, h.predictions, h.labels)
    r_history = {st.name: ((1, fill), (2, fill), (50, fill)) for st in snap.stats}
    membranes = {key: np.full(np.shape(v), fill) for key, v in snap.neuron_membranes.items()}
    return dataclasses.replace(snap, layers=layers, stats=stats, history=history, r_history=r_history,
                               neuron_membranes=membranes, output_counts=np.zeros_like(snap.output_counts),
                               accuracy=np.full(np.shape(snap.accuracy), 0.0 if kind == "silent" else fill))


@pytest.mark.parametrize("kind", ["silent", "inf", "nan"])
def test_every_view_draws_silent_infinite_and_nan_snapshots(qtbot, kind):
    snap = _broken(make_view_snapshot(steps=12, batch=2, labels=True, history_layers=None,
                                      membrane_neurons=(("fc1", 3),)), kind)
    views, problems = load_views(PLOT_VIEWS)
    assert not problems
    table = QtNetworkTable()
    qtbot.addWidget(table)
    failures = []
    for _key, _title, _area, view in views:
        qtbot.addWidget(view)
        view.render_failed.connect(lambda m, d: failures.append((m, d)))
        view.show()
        if hasattr(view, "add_neuron"):
            view.add_neuron("fc1", 3)
        if hasattr(view, "set_stacked"):
            view.set_stacked(True)
        for layer in ("conv1", "fc1", "output", "flatten"):
            view.set_selected_layer(layer)
            view.set_snapshot(snap)
            view.refresh()
    table.set_snapshot(snap)
    assert failures == []
    if kind == "silent":
        rates = dict(zip(*views[[k for k, *_ in views].index("rates")][3].bar_values()))
        assert rates == {"conv1": 0.0, "fc1": 0.0, "output": 0.0}
    else:
        assert table.cell_text("fc1", "r") in ("inf", "–")


def test_a_view_exception_is_shown_in_the_messages_dock_and_status_bar(window, monkeypatch):
    heat = window.views["heatmap"]

    def boom(snapshot):
        raise ValueError("Not setting range to [0.0, inf]")

    monkeypatch.setattr(heat, "_render", boom)
    heat.refresh()
    assert heat.render_errors == 1
    assert any("view error: HeatmapView: Internal error (ValueError): Not setting range" in m for m in window.messages)
    assert "Traceback" in window.log_view.toPlainText()
    assert "Not setting range" in window.statusBar().currentMessage()


def test_at_1280x800_the_r_column_is_visible_and_the_name_column_stays(qtbot, window):
    qtbot.waitUntil(lambda: window.table.rowCount() > 0, timeout=LONG)
    qtbot.wait(50)
    assert window.width() <= 1280 and window.table.column_visible("r")
    table = window.table
    table.horizontalScrollBar().setValue(table.horizontalScrollBar().maximum())
    frozen = table.frozen
    assert frozen.isVisible() and frozen.columnWidth(0) == table.columnWidth(0) and frozen.x() <= table.frameWidth()


def test_table_sorts_by_a_click_and_shows_flagged_only(qtbot, window):
    s = window.session
    s.run_to(60)
    wait_t(qtbot, s, 60)
    table = window.table
    neuron = [layer.name for layer in s.network.neuron_layers]
    silent = {st.name: st.silent for st in s.snapshot.stats}
    table.horizontalHeader().sectionClicked.emit(4)  # silent %: the most silent first
    order = [n for n in table.names_in_order() if n in silent]
    assert [silent[n] for n in order] == sorted((silent[n] for n in order), reverse=True)
    assert set(order) == set(neuron)
    table.horizontalHeader().sectionClicked.emit(0)  # back to the network's order
    assert table.names_in_order() == [layer.name for layer in s.network.layers]
    table.set_flagged_only(True)
    assert table.visible_names() == [n for n in table.names_in_order() if table.flag_level(n) > 0]
    table.set_flagged_only(False)
    window.table_panel.find.setText("conv")
    assert table.visible_names() == [n for n in table.names_in_order() if "conv" in n]
    assert s.selected_layer == table.visible_names()[0]


def test_a_layer_is_not_flagged_before_it_could_have_fired(qtbot, window):
    s = window.session
    s.step()
    wait_t(qtbot, s, 1)
    table = window.table
    for layer in s.network.neuron_layers:
        assert table.flag_level(layer.name) == 0
        assert "not judged before step" in table.flag_reason(layer.name)


def test_the_batch_misclassified_samples_are_listed_and_a_click_shows_one(qtbot, window):
    s = window.session
    s.select_batch(0, 16)
    qtbot.waitUntil(lambda: s.snapshot is not None and s.snapshot.batch == 16, timeout=LONG)
    s.run_to(3)  # early: several samples are still wrong (or undecided)
    wait_t(qtbot, s, 3)
    view = window.input_view
    wrong = [int(i) for i in np.flatnonzero(s.snapshot.predictions != s.snapshot.labels)]
    assert wrong and view.misclassified() == wrong
    assert f"wrong in batch ({len(wrong)}/16)" in view.wrong.text()
    view.wrong.linkActivated.emit(str(wrong[-1]))
    assert view.shown.value() == wrong[-1] and window.views["heatmap"].sample() == wrong[-1]


def test_a_long_message_is_cut_to_fit_keeps_t_in_view_and_stays_in_the_log(qtbot, window):
    s = window.session
    status = window.statusBar()
    long = "Normalized at the 99.9th percentile on 300 samples. Warnings: " + "; ".join(
        f"layer_{i}: tanh is not scale-equivariant" for i in range(12))
    s.status.emit(long)
    shown = status.currentMessage()
    assert shown.endswith("…") and long.startswith(shown[:-1]) and status.toolTip() == long
    assert status.time_label.isVisible() and status.time_label.text().startswith("t = ")
    assert window.messages[-1].endswith(long)


def open_tanh_mlp(qtbot, session, folder) -> None:
    """Open a 4-3-2 MLP whose hidden layer is tanh, with two samples, and wait until it runs."""
    net = nw.Network("tanh_mlp", [
        nw.Layer("in", nw.INPUT, (4,)),
        nw.Layer("h", nw.DENSE, (3,), ("in",), np.full((4, 3), 0.3, np.float32), np.zeros(3, np.float32), "tanh"),
        nw.Layer("out", nw.DENSE, (2,), ("h",), np.full((3, 2), 0.5, np.float32), np.zeros(2, np.float32), "relu"),
    ])
    net.save(folder / "tanh_mlp.npz")
    np.savez(folder / "data.npz", x=np.full((2, 4), 0.5, np.float32), y=np.zeros(2, np.int64))
    session.open_model(folder / "tanh_mlp.npz")
    qtbot.waitUntil(lambda: session.network is not None and session.network.name == "tanh_mlp", timeout=LONG)
    session.open_data(folder / "data.npz")
    qtbot.waitUntil(lambda: session.snapshot is not None
                    and [ls.name for ls in session.snapshot.layers] == ["in", "h", "out"], timeout=LONG)


def test_the_conversion_plan_reaches_the_window(qtbot, window, tmp_path):
    """A tanh layer forced onto rectifying IF (a per-layer override): the plan's warning is in the
    Messages dock, and the table's kind column names the model each neuron layer runs."""
    from workbench.engine.neurons import IF

    s = window.session
    open_tanh_mlp(qtbot, s, tmp_path)
    assert window.table.cell_text("h", "kind") != "dense · if"  # the plan gives tanh its wrapper
    s.set_config(dataclasses.replace(s.config, overrides={"h": IF()}))
    qtbot.waitUntil(lambda: any("conversion: h: tanh" in m for m in window.messages), timeout=LONG)
    qtbot.waitUntil(lambda: window.table.cell_text("h", "kind") == "dense · if", timeout=LONG)
    assert window.table.cell_text("out", "kind").startswith("dense · ")
