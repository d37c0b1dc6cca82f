// Starts Swagger UI on /docs. A file of its own, not an inline script: the app's
// Content-Security-Policy allows scripts from this origin only.
window.addEventListener("load", function () {
  var page = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: page.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
