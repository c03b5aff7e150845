"""The catalog as a page for people (`/asyncapi`): every topic, its events with producer,
consumers and key, each event's payload schema and example. Rendered on the server from the
document itself, so it needs no script from elsewhere."""

from __future__ import annotations

import json
from html import escape
from typing import Any

STYLE = ("body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;line-height:1.45}"
         "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;"
         "vertical-align:top}pre{background:#f6f6f6;padding:.6rem;overflow:auto;font-size:.85rem}code{font-size:.9em}")


def render(document: dict[str, Any]) -> str:
    info, components = document["info"], document["components"]
    channels = "".join(_channel(c, components) for c in document["channels"].values())
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{escape(info['title'])}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(info['title'])} <small>{escape(info['version'])}"
            f"</small></h1><p>AsyncAPI {escape(document['asyncapi'])}: <a href=asyncapi.json>asyncapi.json</a></p>"
            f"<pre>{escape(info['description'])}</pre>{channels}</body></html>")


def _channel(channel: dict[str, Any], components: dict[str, Any]) -> str:
    rows = "".join(_row(components["messages"][_name(ref)], components["schemas"])
                   for ref in channel["messages"].values())
    return (f"<h2 id='{escape(channel['address'])}'><code>{escape(channel['address'])}</code></h2>"
            f"<p>{escape(channel['description'])}</p><table><tr><th>event</th><th>what it says</th></tr>{rows}</table>")


def _row(message: dict[str, Any], schemas: dict[str, Any]) -> str:
    payload = message["payload"]
    payload = schemas[_name(payload)] if "$ref" in payload else payload  # its nested models stay references
    example = message.get("examples", [{}])[0]
    details = "".join(f"<details><summary>{label}</summary><pre>{escape(json.dumps(value, indent=2))}</pre></details>"
                      for label, value in (("payload schema", payload), ("example", example)) if value)
    return (f"<tr><td><code>{escape(message.get('x-ce-type', message['name']))}</code></td>"
            f"<td>{escape(message['summary'])}<br>{escape(message.get('description', ''))}{details}</td></tr>")


def _name(ref: dict[str, str]) -> str:
    return ref["$ref"].rsplit("/", 1)[-1]
