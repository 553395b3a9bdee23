"""Where unit run states come from besides the HTTP API: the MQTT subscriber and, with the optional
``opcua`` extra, the OPC UA client; started and stopped on the serving loop."""

from __future__ import annotations

import logging
from typing import Any

from gateway.config.plant import PlantConfig
from gateway.units.mqtt import UnitsMqttSubscriber
from gateway.units.states import UnitStates

log = logging.getLogger(__name__)


class UnitFeeds:
    def __init__(self, plant: PlantConfig, units: UnitStates) -> None:
        self.feeds: list[Any] = []
        if plant.mqtt is not None:
            self.feeds.append(UnitsMqttSubscriber(plant.mqtt, units))
        if plant.opcua is not None:
            try:
                from gateway.units.opcua import UnitsOpcUaClient
            except ImportError as exc:
                log.error(
                    "plant.opcua is set but asyncua is not installed (%s): pip install 'vigil[opcua]'", exc
                )
            else:
                self.feeds.append(UnitsOpcUaClient(plant.opcua, units))

    async def start(self) -> None:
        for feed in self.feeds:
            await feed.start()

    async def stop(self) -> None:
        for feed in self.feeds:
            await feed.stop()
