// The API documentation page: Swagger UI from the swagger-ui-bundle package, served by this server (no CDN).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null });
