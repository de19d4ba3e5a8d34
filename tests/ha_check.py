"""Checks phone2mqtt's Home Assistant discovery messages with Home Assistant's own code.

Run by tests/homeassistant.rs with a Python that has the `homeassistant` package (and paho-mqtt,
which its MQTT integration imports). Reads JSON on stdin:

    {"messages": [{"topic": "homeassistant/device/<id>/config", "payload": "<json>"}],
     "samples": {"<topic>": ["<payload>", ...]}}

and does what Home Assistant does with a device discovery message
(homeassistant/components/mqtt/discovery.py, `async_discovery_message_received`):

1. the topic must match its discovery topic pattern;
2. abbreviations are expanded and the payload is checked with `DEVICE_DISCOVERY_SCHEMA`;
3. each component gets the device, origin and shared options merged in, exactly as
   `_merge_common_device_options` does, and is checked with its platform's `DISCOVERY_SCHEMA`
   (device triggers: `TRIGGER_DISCOVERY_SCHEMA`). Those schemas drop unknown keys silently, so
   each component is also checked with the platform's strict schema, which refuses them (a typo
   would otherwise pass and do nothing);
4. every template is rendered by Home Assistant's template engine, the way the MQTT integration
   renders it (`MqttValueTemplate`), against the sample payloads the gateway really published on
   the component's topic, and the result is checked as the platform would read it: an event
   type the entity declares, an option of the enum sensor, ON/OFF/None, a JSON object for
   attributes, a device trigger that fires exactly for its own event.

Prints one line per message; exits 1 with the problems on stderr when anything fails.
"""

import asyncio
import copy
import importlib
import json
import logging
import sys
import tempfile

import voluptuous as vol

from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template
from homeassistant.components.mqtt import discovery, schemas
from homeassistant.components.mqtt import device_trigger
from homeassistant.components.mqtt.models import MqttValueTemplate, PayloadSentinel

ENTITY_PLATFORMS = {"event", "sensor", "binary_sensor", "switch", "button", "notify", "text"}


def strict_schema(platform):
    module = importlib.import_module(f"homeassistant.components.mqtt.{platform}")
    return module.DISCOVERY_SCHEMA, module.PLATFORM_SCHEMA_MODERN


class Warnings(logging.Handler):
    """Home Assistant logs template trouble (an undefined variable...) as warnings: each one
    would be in a user's log on every message, so each one is a finding."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


class Checker:
    def __init__(self, hass, samples):
        self.hass = hass
        self.samples = samples
        self.errors = []
        self.warnings = Warnings()
        logging.getLogger("homeassistant").addHandler(self.warnings)

    def fail(self, where, text):
        self.errors.append(f"{where}: {text}")

    def render(self, template, payload, this=None):
        """Renders like the MQTT integration: `value` and `value_json`, plus `this`."""
        value_template = MqttValueTemplate(Template(template, self.hass), entity=None)
        variables = {"this": this or {"state": "unknown", "attributes": {}}}
        self.warnings.records.clear()
        rendered = value_template.async_render_with_possible_json_value(
            payload, PayloadSentinel.DEFAULT, variables=variables
        )
        if self.warnings.records:
            raise ValueError(f"Home Assistant warned: {self.warnings.records}")
        return rendered

    def check_message(self, topic, payload_text):
        trimmed = topic.split("/", 1)[1] if "/" in topic else topic
        match = discovery.TOPIC_MATCHER.match(trimmed)
        if not match or match.group("component") != "device":
            self.fail(topic, "not a device discovery topic Home Assistant listens to")
            return 0
        payload = json.loads(payload_text)
        discovery._replace_all_abbreviations(payload)
        try:
            schemas.DEVICE_DISCOVERY_SCHEMA(copy.deepcopy(payload))
        except vol.Invalid as err:
            self.fail(topic, f"DEVICE_DISCOVERY_SCHEMA: {err}")
            return 0
        for component_id, config in payload["components"].items():
            where = f"{topic} [{component_id}]"
            config = copy.deepcopy(config)
            platform = config.pop("platform")
            own = copy.deepcopy(config)
            config["device"] = payload["device"]
            config["origin"] = payload.get("origin")
            discovery._merge_common_device_options(config, payload)
            if platform == "device_automation":
                self.check_trigger(where, config, own)
            elif platform in ENTITY_PLATFORMS:
                self.check_entity(where, platform, config)
            else:
                self.fail(where, f"unexpected platform {platform}")
        return len(payload["components"])

    def check_entity(self, where, platform, config):
        discovery_schema, strict = strict_schema(platform)
        try:
            validated = discovery_schema(copy.deepcopy(config))
            strict(copy.deepcopy(config))
        except vol.Invalid as err:
            self.fail(where, f"{platform} schema: {err}")
            return
        self.check_templates(where, platform, validated, config)

    def check_trigger(self, where, config, own):
        try:
            device_trigger.TRIGGER_DISCOVERY_SCHEMA(copy.deepcopy(config))
            strict = device_trigger.TRIGGER_DISCOVERY_SCHEMA.extend({}, extra=vol.PREVENT_EXTRA)
            strict({**own, "device": config["device"]})
        except vol.Invalid as err:
            self.fail(where, f"device trigger schema: {err}")
            return
        if config.get("automation_type") != "trigger":
            self.fail(where, "automation_type must be trigger")
        samples = self.samples.get(config["topic"], [])
        for sample in samples:
            try:
                rendered = self.render(config["value_template"], sample)
            except Exception as err:  # noqa: BLE001
                self.fail(where, f"value_template failed on {sample}: {err}")
                continue
            event = json.loads(sample).get("event")
            fires = rendered == config["payload"]
            if config["type"] == "event" and fires != (event == config["subtype"]):
                self.fail(where, f"fires={fires} for a `{event}` event ({rendered!r})")

    def check_templates(self, where, platform, validated, config):
        value_template = config.get("value_template")
        state_topic = config.get("state_topic")
        if value_template and state_topic:
            this = {"state": "unknown", "attributes": {}}
            for sample in self.samples.get(state_topic, []):
                try:
                    rendered = self.render(value_template, sample, this)
                except Exception as err:  # noqa: BLE001 - any failure is a finding
                    self.fail(where, f"value_template failed on {sample}: {err}")
                    continue
                self.check_value(where, platform, validated, config, rendered, sample)
                this = {"state": rendered, "attributes": {}}
        attributes_template = config.get("json_attributes_template")
        attributes_topic = config.get("json_attributes_topic")
        if attributes_template and attributes_topic:
            this = {"state": "unknown", "attributes": {}}
            for sample in self.samples.get(attributes_topic, []):
                try:
                    rendered = self.render(attributes_template, sample, this)
                    attributes = json.loads(rendered)
                except Exception as err:  # noqa: BLE001
                    self.fail(where, f"json_attributes_template on {sample}: {err}")
                    continue
                if not isinstance(attributes, dict):
                    self.fail(where, f"attributes are not an object: {rendered}")
                this = {"state": "unknown", "attributes": attributes}

    def check_value(self, where, platform, validated, config, rendered, sample):
        if platform == "event":
            event = json.loads(rendered)
            if event.get("event_type") not in validated["event_types"]:
                self.fail(where, f"event_type {event.get('event_type')!r} not declared")
            for key in ("remote", "remote_name"):
                if json.loads(sample).get(key) != event.get(key):
                    self.fail(where, f"attribute {key} lost: {rendered}")
        elif platform == "sensor" and validated.get("device_class") == "enum":
            if rendered not in validated["options"] and rendered != "None":
                self.fail(where, f"{rendered!r} is not an option")
        elif platform == "binary_sensor":
            allowed = {validated["payload_on"], validated["payload_off"], "None"}
            if rendered not in allowed:
                self.fail(where, f"{rendered!r} is none of {sorted(allowed)}")
        elif platform == "switch":
            allowed = {
                validated.get("state_on", validated["payload_on"]),
                validated.get("state_off", validated["payload_off"]),
                "None",
            }
            if rendered not in allowed:
                self.fail(where, f"{rendered!r} is none of {sorted(allowed)}")


async def main():
    request = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as config_dir:
        hass = HomeAssistant(config_dir)
        checker = Checker(hass, request.get("samples", {}))
        for message in request["messages"]:
            count = checker.check_message(message["topic"], message["payload"])
            print(f"{message['topic']}: {count} components checked")
    if checker.errors:
        print("\n".join(checker.errors), file=sys.stderr)
        sys.exit(1)
    print("ok")


asyncio.run(main())
