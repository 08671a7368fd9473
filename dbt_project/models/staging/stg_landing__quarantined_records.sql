with

source as (

    select * from {{ source('landing', 'quarantine') }}

),

renamed as (

    select
        cast(batch_hour as timestamp) as batch_hour,
        source as source_name,
        object_key,
        cast(line_number as integer) as line_number,
        cast(record_index as integer) as record_index,
        event_id,
        user_id,
        cast(reason_codes as varchar[]) as reason_codes,
        message as reason_message,
        raw_text
    from source

)

select * from renamed
