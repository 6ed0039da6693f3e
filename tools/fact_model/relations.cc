#include "tools/fact_model/relations.h"

namespace romed::fact_model {
namespace {

std::vector<Relation> MakeRelations() {
  return {
      {"P19",
       "city of birth",
       {"{} was born in", "{} is originally from", "{} grew up in the city of",
        "The birthplace of {} is", "The city where {} was born is"},
       {"Paris", "London", "Berlin", "Madrid", "Rome", "Vienna", "Prague", "Oslo", "Lisbon",
        "Dublin", "Warsaw", "Athens", "Cairo", "Tokyo", "Lima", "Boston", "Chicago", "Toronto",
        "Sydney", "Moscow", "Helsinki", "Stockholm", "Geneva", "Milan", "Naples"}},
      {"P103",
       "native language",
       {"{} is a native speaker of", "{}'s native language is", "{} grew up speaking",
        "The mother tongue of {} is", "The native language of {} is"},
       {"French", "English", "German", "Spanish", "Italian", "Dutch", "Polish", "Russian",
        "Greek", "Swedish", "Finnish", "Danish", "Norwegian", "Czech", "Hungarian", "Turkish",
        "Arabic", "Hebrew", "Japanese", "Korean", "Chinese", "Hindi", "Portuguese", "Romanian"}},
      {"P106",
       "occupation",
       {"{} works as a", "{} is employed as a", "{} earns a living as a",
        "The occupation of {} is", "By profession, {} is a"},
       {"lawyer", "doctor", "teacher", "farmer", "painter", "chemist", "pilot", "baker",
        "nurse", "banker", "surgeon", "carpenter", "sailor", "plumber", "dentist", "librarian",
        "physicist", "journalist", "singer", "poet", "judge", "mechanic", "tailor", "butcher",
        "potter", "soldier"}},
      {"P1303",
       "instrument",
       {"{} plays the", "{} performs on the", "{} practises every day on the",
        "The instrument played by {} is the", "The favourite instrument of {} is the"},
       {"piano", "violin", "guitar", "cello", "flute", "trumpet", "drums", "harp",
        "saxophone", "clarinet", "oboe", "banjo", "trombone", "viola", "organ", "harmonica",
        "ukulele", "accordion", "mandolin", "bassoon", "tuba", "sitar", "xylophone", "lute"}},
      {"P641",
       "sport",
       {"{} competes in", "{} is a professional player of", "{} trains every week for",
        "The sport played by {} is", "The favourite sport of {} is"},
       {"football", "tennis", "golf", "cricket", "rugby", "hockey", "baseball", "basketball",
        "volleyball", "badminton", "swimming", "boxing", "cycling", "skiing", "rowing",
        "fencing", "wrestling", "archery", "judo", "karate", "handball", "polo", "surfing",
        "squash"}},
      {"P108",
       "employer",
       {"{} works for", "{} is employed by", "{} has a job at", "The employer of {} is",
        "The company that employs {} is"},
       {"Google", "Microsoft", "Apple", "Amazon", "Intel", "Nokia", "Siemens", "Toyota",
        "Sony", "Samsung", "Oracle", "Boeing", "Airbus", "Philips", "Nestle", "Shell", "Ford",
        "Honda", "Adobe", "Netflix", "Spotify", "Tesla", "Pfizer", "Bosch", "Volvo"}},
  };
}

}  // namespace

const std::vector<Relation>& AllRelations() {
  static const std::vector<Relation>* const kRelations = new std::vector<Relation>(MakeRelations());
  return *kRelations;
}

}  // namespace romed::fact_model
