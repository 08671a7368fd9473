{#- Trak.io identify, alias, track, annotate and page_view calls from landing.events, renamed and cast. -#}
{{ stage_landing_events('trakio') }}
