/* Charts of reports and dashboards: each `.chart[data-chart]` holds the JSON the server made
   (ui/reports.py chart_data); ECharts draws it on a canvas. Clicking a bar, point or slice opens
   the list of the records behind it (the `links` the server computed). No inline script, no eval. */
(function () {
  "use strict";
  function option(d) {
    // richText: the tooltip is drawn on the canvas — an HTML tooltip would carry style attributes the CSP refuses
    var tooltip = { trigger: (d.type === "pie" || d.type === "funnel") ? "item" : "axis", confine: true, renderMode: "richText" };
    var legend = { type: "scroll", bottom: 0 };
    if (d.type === "pie" || d.type === "funnel") {
      var s = d.series[0] || { name: "", data: [] };
      var items = d.categories.map(function (c, i) { return { name: c, value: s.data[i] }; });
      var one = d.type === "pie"
        ? { type: "pie", name: s.name, radius: ["30%", "65%"], data: items }
        : { type: "funnel", name: s.name, sort: "descending", left: "10%", width: "80%", top: 10, bottom: 40, data: items };
      return { tooltip: tooltip, legend: legend, series: [one] };
    }
    var stacked = d.type === "stacked_bar";
    return {
      tooltip: tooltip,
      legend: legend,
      grid: { left: 8, right: 16, top: 16, bottom: 40, containLabel: true },
      xAxis: { type: "category", data: d.categories, axisLabel: { hideOverlap: true } },
      yAxis: { type: "value" },
      series: d.series.map(function (s) {
        // a series may say its own kind (a forecast: stacked bars of actuals and pipeline, a dashed trend line)
        var kind = s.type || (d.type === "line" ? "line" : "bar");
        var one = { type: kind, name: s.name, data: s.data, stack: s.stack || (stacked ? "all" : undefined) };
        if (s.dashed) { one.lineStyle = { type: "dashed" }; one.symbol = "none"; }
        if (kind === "line") { one.connectNulls = false; }
        return one;
      })
    };
  }
  function draw(el) {
    if (el.getAttribute("data-drawn") || typeof echarts === "undefined") { return; }
    el.setAttribute("data-drawn", "1");
    var d;
    try { d = JSON.parse(el.getAttribute("data-chart")); } catch (e) {
      el.textContent = el.getAttribute("data-failed") || "";
      return;
    }
    var chart = echarts.init(el);
    chart.on("finished", function () { el.setAttribute("data-ready", "1"); });   // drawn, animation over
    chart.setOption(option(d));
    chart.on("click", function (p) {
      var row = (d.links || [])[(d.type === "pie" || d.type === "funnel") ? 0 : p.seriesIndex] || [];
      var url = row[p.dataIndex];
      if (url) { window.location.assign(url); }
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  function drawAll(root) {
    (root || document).querySelectorAll(".chart[data-chart]").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawAll(); });
  } else { drawAll(); }
  document.addEventListener("htmx:afterSwap", function (e) { drawAll(e.target); });
})();
