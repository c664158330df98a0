// The status page: read-only. It polls /status.json and fills the tables with
// textContent only (a value a station chose never becomes markup).
"use strict";

const POLL_MS = 2000;
let page = 1;
let search = "";

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function watts(value) {
  if (value === null || value === undefined) return null;
  return value >= 1000 ? (value / 1000).toFixed(2) + " kW" : Math.round(value) + " W";
}

function kwh(value) {
  if (value === null || value === undefined) return null;
  return (value / 1000).toFixed(2) + " kWh";
}

function since(ms) {
  return ms ? new Date(ms).toLocaleString() : null;
}

function stationRows(station) {
  const rows = [];
  const connectors = station.connectors.length ? station.connectors : [null];
  connectors.forEach((connector, index) => {
    const row = document.createElement("tr");
    row.dataset.station = station.id;
    if (index === 0) {
      row.className = "station";
      cell(row, station.id);
      cell(row, station.ocpp);
      cell(row, station.connected ? "connected" : "disconnected",
        station.connected ? "connected" : "disconnected");
      cell(row, since(station.since));
      cell(row, station.vendor);
      cell(row, station.model);
      cell(row, station.firmware);
      cell(row, station.upstream === null ? null : (station.upstream ? "connected" : "away"));
    } else {
      for (let i = 0; i < 8; i++) cell(row, "");
    }
    if (connector === null) {
      cell(row, "station");
      cell(row, station.status);
      cell(row, null, "number");
      cell(row, null, "number");
    } else {
      cell(row, connector.id);
      cell(row, connector.status);
      cell(row, kwh(connector.energy_wh), "number");
      cell(row, watts(connector.power_w), "number");
    }
    const limit = connector === null ? station.limit_w
      : (connector.limit_w !== null ? connector.limit_w : station.limit_w);
    const td = cell(row, watts(limit), "number");
    td.dataset.field = "limit";
    rows.push(row);
  });
  return rows;
}

function render(data) {
  document.getElementById("name").textContent = data.connector.name;
  const s = data.stations;
  document.getElementById("summary").textContent =
    `${s.connected} of ${s.total} stations connected` +
    (data.connector.instance !== null ? ` (instance ${data.connector.instance})` : "");
  document.getElementById("updated").textContent =
    "updated " + new Date(data.connector.time).toLocaleTimeString();
  document.getElementById("pages").textContent =
    `page ${s.page} of ${s.pages} (${s.matching} stations)`;
  page = s.page;
  const body = document.querySelector("#stations tbody");
  const rows = s.items.flatMap(stationRows);
  body.replaceChildren(...rows);
  const groups = document.querySelector("#groups tbody");
  document.getElementById("groups-section").hidden = data.groups.length === 0;
  groups.replaceChildren(...data.groups.map((group) => {
    const row = document.createElement("tr");
    row.dataset.group = group.name;
    cell(row, group.name);
    cell(row, watts(group.limit_w), "number");
    cell(row, watts(group.allocated_w), "number");
    cell(row, watts(group.measured_w), "number");
    cell(row, group.allocations.map((a) => `${a.cp}:${a.connector} ${watts(a.w)}`).join(", "));
    return row;
  }));
}

let asking = false;

async function refresh() {
  if (asking) return; // one request at a time: a slow answer is not overtaken
  asking = true;
  const query = new URLSearchParams({ page: String(page), q: search });
  try {
    const response = await fetch("status.json?" + query, { cache: "no-store" });
    if (response.ok) render(await response.json());
    else document.getElementById("summary").textContent = `error ${response.status}`;
  } catch (error) {
    document.getElementById("summary").textContent = "the connector does not answer";
  } finally {
    asking = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("search").addEventListener("input", (event) => {
    search = event.target.value;
    page = 1;
    refresh();
  });
  document.getElementById("previous").addEventListener("click", () => { page = Math.max(1, page - 1); refresh(); });
  document.getElementById("next").addEventListener("click", () => { page += 1; refresh(); });
  refresh();
  setInterval(refresh, POLL_MS);
});
