// carebot manager dashboard: draws the page's charts with Apache ECharts (served from node_modules).
// Each chart element gets data-series-count and data-series-sum once drawn (what the tests read).
// Tooltips are drawn on the canvas (renderMode "richText"), never as HTML: chart labels carry
// customers' own words (misunderstood messages, themes), and the page's Content-Security-Policy
// allows no inline styles, which ECharts' HTML tooltips use.
"use strict";

const TOOLTIP = { renderMode: "richText", confine: true };

const PALETTE = ["#2680c2", "#f0b429", "#3ebd93", "#ef4e4e", "#9446ed", "#647acb", "#f7d070", "#65d6ad"];

function total(spec) {
  let sum = 0;
  for (const series of spec.series) {
    for (const value of series.data) {
      if (typeof value === "number") sum += value;
    }
  }
  return Math.round(sum * 100) / 100;
}

function pieOption(spec) {
  const series = spec.series[0];
  return {
    tooltip: { ...TOOLTIP, trigger: "item", formatter: "{b}: {c} ({d}%)" },
    legend: { bottom: 0, type: "scroll" },
    series: [{
      name: series.name, type: spec.kind === "funnel" ? "funnel" : "pie",
      radius: spec.kind === "funnel" ? undefined : ["35%", "65%"],
      sort: spec.kind === "funnel" ? "none" : undefined,
      label: { formatter: "{b}: {c}" },
      data: spec.categories.map((name, i) => ({ name, value: series.data[i] })),
    }],
  };
}

function axisOption(spec) {
  const horizontal = spec.kind === "hbar";
  const crowded = !horizontal && spec.categories.length > 6;
  const categories = { type: "category", data: spec.categories, axisLabel: { interval: 0, rotate: crowded ? 30 : 0 } };
  const values = { type: "value" };
  return {
    tooltip: { ...TOOLTIP, trigger: "axis" },
    legend: { bottom: 0, type: "scroll" },
    grid: { left: 12, right: 24, top: 16, bottom: 36, containLabel: true },
    xAxis: horizontal ? values : categories,
    yAxis: horizontal ? { ...categories, inverse: true } : values,
    series: spec.series.map((series) => ({
      name: series.name, type: spec.kind === "line" ? "line" : "bar", data: series.data,
      connectNulls: true, barMaxWidth: 28,
    })),
  };
}

function draw(element, spec) {
  const chart = echarts.init(element, null, { renderer: "canvas" });
  const option = spec.kind === "pie" || spec.kind === "funnel" ? pieOption(spec) : axisOption(spec);
  const empty = !spec.series.some((series) => series.data.some((value) => typeof value === "number" && value !== 0));
  const title = empty ? { title: { text: "所选范围内没有数据", left: "center", top: "middle", textStyle: { color: "#9aa5b1", fontSize: 14, fontWeight: "normal" } } } : {};
  chart.setOption({ color: PALETTE, animation: false, ...option, ...title });
  element.dataset.seriesCount = String(spec.series.length);
  element.dataset.seriesSum = String(total(spec));
  element.dataset.drawn = "true";
  return chart;
}

document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("chart-data");
  if (!source || typeof echarts === "undefined") return;
  const specs = JSON.parse(source.textContent);
  const charts = [];
  for (const element of document.querySelectorAll(".chart[data-chart]")) {
    const spec = specs[element.dataset.chart];
    if (spec) charts.push(draw(element, spec));
  }
  window.addEventListener("resize", () => charts.forEach((chart) => chart.resize()));
});
