"""The HTML side of the service: forms for submitters, their tracking page, templates, i18n."""
