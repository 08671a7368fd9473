with

source as (

    select * from {{ source('landing', 'object_counts') }}

),

renamed as (

    select
        cast(batch_hour as timestamp) as batch_hour,
        source as source_name,
        object_key,
        cast(records_read as bigint) as records_read,
        cast(records_valid as bigint) as records_valid,
        cast(records_quarantined as bigint) as records_quarantined,
        cast(coalesce(records_suppressed, 0) as bigint) as records_suppressed
    from source

)

select * from renamed
