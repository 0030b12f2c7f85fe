"""Meter test: meter and reference volumes at three flows, accuracy on the tablet, pass/fail, keep/replace."""

from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty

from mobile.core.forms import MeterTestForm
from mobile.core.meter_test import TEST_FLOWS, FlowPoint, normalise_size
from mobile.screens.common import CompletionScreen, load_kv
from mobile.services import Services

load_kv(__file__)


class MeterTestScreen(CompletionScreen):
    """Observes a MeterTestForm; shows accuracy per point as volumes are typed."""

    size_label = StringProperty("")
    verdict = StringProperty("")
    low_result = StringProperty("")
    intermediate_result = StringProperty("")
    high_result = StringProperty("")
    low_flow = StringProperty("")
    intermediate_flow = StringProperty("")
    high_flow = StringProperty("")

    def new_form(self, order: Any) -> MeterTestForm:
        """An empty meter-test form."""
        return MeterTestForm(order=order)

    def reset_inputs(self) -> None:
        """Clear inputs; show the test flows for this meter's size."""
        for point in FlowPoint:
            self.ids[f"meter_{point.value}"].text = ""
            self.ids[f"ref_{point.value}"].text = ""
        self.ids.notes.text = ""
        self.ids.keep.state = "normal"
        self.ids.replace.state = "normal"
        meter = self.form.order.meters[0] if self.form.order.meters else None
        size = normalise_size(meter.size_in if meter else None)
        flows = TEST_FLOWS.get(size) if size else None
        self.size_label = f"Meter {meter.meter_id if meter else '-'} · size {size or 'unknown'}"
        for point in FlowPoint:
            setattr(self, f"{point.value}_flow", f"{flows.gpm(point):g} gpm" if flows else "")

    def set_volume(self, kind: str, point: str, text: str) -> None:
        """A volume field changed."""
        if self.form is None:
            return
        target = self.form.meter_volume if kind == "meter" else self.form.reference_volume
        target[FlowPoint(point)] = text
        self.refresh()

    def refresh(self) -> None:
        """Accuracy per point and the verdict, live."""
        if self.form is None:
            return
        outcome = self.form.outcome()
        if outcome is None:
            for point in FlowPoint:
                setattr(self, f"{point.value}_result", "")
            self.verdict = "Enter all six volumes to compute accuracy"
            return
        for result in outcome.points:
            mark = "PASS" if result.passed else "FAIL"
            setattr(
                self,
                f"{result.point.value}_result",
                f"{result.accuracy_pct:.1f}%  {mark}  ({result.min_pct:g}-{result.max_pct:g}%)",
            )
        word = "PASSED" if outcome.passed else "FAILED"
        chosen = self.form.recommendation or outcome.recommendation
        self.verdict = (
            f"Meter {word} · billing accuracy {outcome.billing_accuracy_pct:.1f}% · recommend {chosen}"
        )


def build(services: Services, navigator: Any) -> MeterTestScreen:
    """The meter-test screen."""
    return MeterTestScreen(services, navigator)
